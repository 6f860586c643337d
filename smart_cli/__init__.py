"""smart-cli: SMART (submodular data mixture strategy) instruction-tuning mixtures from the shell."""

__version__ = "0.2.0"
