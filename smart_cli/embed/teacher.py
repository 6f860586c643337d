"""The transformer's part in a static ``EMB_DIR``: stage 1's task means and the map of every row.

Stage 1 needs only each task's mean embedding. A static model places those means differently from
the transformer it was distilled from, and the tasks chosen differ with them. So ``embed
--backend static`` also embeds a seeded sample of each task's rows (``task_sample``, all rows of
a smaller task) with the transformer, and estimates each task's transformer mean from it, with
the static vectors of *every* row as a control variate:

    mean_T(task) ~ mean_T(sample) + (mean_S(task) - mean_S(sample)) @ W

where ``W`` is the least-squares map from static to transformer vectors, fitted on the sample's
pairs with each task's sample mean removed (the within-task regression; a small ridge keeps it
defined). A task whose rows are all sampled gets its exact transformer mean. The result,
``task_means.npy`` (float64, tasks in ``rows.parquet`` order), is what ``select-tasks`` reads
(``task_means.stage1_means``).

The same sample also fits an affine map from static to transformer vectors (``static_map.npy``,
``backends/mapped.py``), through which every row is stored (``--row-map transformer``, the
default): stage 2 then selects on vectors nearer the transformer's. The map is fitted before the
rows are embedded, and the sample's vectors are kept until ``embed`` ends, so that a resumed run
maps its remaining rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from smart_cli import artifacts, defaults
from smart_cli import dataset_pages as pages
from smart_cli.artifacts import ROWS, STATIC_MAP, STATIC_TOKENS, TASK_MEANS
from smart_cli.embed.config import EmbedConfig
from smart_cli.embed.source import _texts, map_method, teacher_record
from smart_cli.reporter import Reporter
from smart_cli.task_means import sum_by_group

#: The sample's batch on a CPU: real-length prompts (~1,200 characters, cut at 256 tokens) ran at
#: 43-45 texts/s in batches of 16 against 35-37 in batches of 64 (all-MiniLM-L6-v2, two cores):
#: attention's working set stays in cache. The transformer backend keeps ``--batch-size`` as it is.
CPU_BATCH = 16
#: Texts per call of the transformer (one progress step each).
_CHUNK = 512
#: The sample's transformer vectors while ``embed`` runs (``-<fingerprint>.npy``; gone when it ends).
TEACHER_SAMPLE = ".teacher-sample"


def sample_rows(task_codes: np.ndarray, n_tasks: int, per_task: int, seed: int) -> np.ndarray:
    """Sorted row positions: ``per_task`` rows of each task drawn without replacement (all of a smaller
    task), the same for the same codes, count and seed on any machine."""
    order = np.argsort(task_codes, kind="stable")
    starts = np.searchsorted(task_codes[order], np.arange(n_tasks + 1))
    rng = np.random.default_rng(seed)
    picked = []
    for t in range(n_tasks):
        members = order[starts[t] : starts[t + 1]]
        if len(members) > per_task:
            members = members[np.sort(rng.choice(len(members), per_task, replace=False))]
        picked.append(members)
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)


def group_means(values: np.ndarray, codes: np.ndarray, n_groups: int, block: int = 1 << 16) -> np.ndarray:
    """Float64 mean of ``values``' rows per code, summed in row order (fixed, whatever the BLAS); a
    memory map is read a block of rows at a time."""
    sums = np.zeros((n_groups, values.shape[1]), dtype=np.float64)
    for lo in range(0, values.shape[0], block):
        sums += sum_by_group(values[lo : lo + block], codes[lo : lo + block], n_groups)
        artifacts.release_pages(values)
    return sums / np.maximum(np.bincount(codes, minlength=n_groups), 1)[:, None]


def fit_map(static: np.ndarray, teacher: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Least-squares ``W`` (static dim x teacher dim) with ``static @ W ~ teacher`` inside tasks."""
    from smart_cli.backends.mapped import ridge_solve

    s = static - group_means(static, codes, n_groups)[codes]
    return ridge_solve(s, teacher - group_means(teacher, codes, n_groups)[codes])


def estimate(
    static_all: np.ndarray,
    all_codes: np.ndarray,
    sample: np.ndarray,
    teacher: np.ndarray,
    n_tasks: int,
) -> np.ndarray:
    """Each task's transformer mean from the sample's teacher vectors, corrected by the static control
    variate. ``static_all``: every row's static vector (memmap fine); ``sample``: row positions of
    ``teacher``'s rows."""
    codes = all_codes[sample]
    static_sample = np.asarray(static_all[sample], dtype=np.float64)
    full = group_means(static_all, all_codes, n_tasks)
    w = fit_map(static_sample, teacher, codes, n_tasks)
    shift = (full - group_means(static_sample, codes, n_tasks)) @ w
    return group_means(teacher, codes, n_tasks) + shift


@dataclass(frozen=True)
class TeacherSample:
    """The sampled rows (positions in ``EMB_DIR``) and their transformer vectors, with every row's task."""

    positions: np.ndarray
    vectors: np.ndarray  # (len(positions), teacher dim) float64
    codes: np.ndarray  # (rows,) int32: every row's task, as rows.parquet orders them
    n_tasks: int
    encoder: str


def teacher_sample(texts, cfg: EmbedConfig, model: str, out: Path, fp: str, reporter: Reporter) -> TeacherSample:
    """Embed the seeded sample of each task's rows with the transformer (``cfg.model``), or read it back
    where a run with the same inputs (fingerprint ``fp``) already did: a resumed run maps its rows
    with the same map. ``texts``: the embedded rows' text columns; ``out/rows.parquet`` is written."""
    import pyarrow.parquet as pq

    from smart_cli.artifacts.embeddings import _codes
    from smart_cli.embed.shards import load_encoder

    names, codes = _codes(pq.read_table(out / ROWS, columns=["task"]).column("task"))
    sample = sample_rows(codes, len(names), cfg.task_sample, defaults.SEED)
    kept = out / f"{TEACHER_SAMPLE}-{fp}.npy"
    encoder = load_encoder(replace(cfg, backend="transformer", precision="fp32", static_map=None), model)
    encoder.batch_size = sample_batch(encoder.batch_size, encoder.on_cpu)
    try:
        if kept.is_file():
            vectors = np.load(kept, allow_pickle=False)
            if vectors.shape == (len(sample), int(encoder.dim)):
                reporter.log(f"resuming: the transformer sample of {len(sample):,} rows is kept in {out}", "cyan")
                return TeacherSample(sample, vectors, codes, len(names), encoder.name)
        vectors = np.empty((len(sample), int(encoder.dim)), dtype=np.float64)
        with reporter.progress("transformer sample (task means, row map)", len(sample)) as advance:
            for lo in range(0, len(sample), _CHUNK):
                rows = sample[lo : lo + _CHUNK]
                vectors[lo : lo + len(rows)] = encoder.encode(_texts(texts[rows.tolist()], cfg))
                pages.release_dataset_pages(pages.dataset_files(texts))  # scattered rows: see dataset_pages.py
                advance(len(rows))
    finally:
        getattr(encoder, "close", lambda: None)()
    for old in out.glob(f"{TEACHER_SAMPLE}-*.npy"):
        old.unlink(missing_ok=True)  # another run's
    with artifacts.atomic_path(kept) as tmp, open(tmp, "wb") as fh:
        np.save(fh, vectors, allow_pickle=False)
    return TeacherSample(sample, vectors, codes, len(names), encoder.name)


def sample_batch(batch_size: int, on_cpu: bool) -> int:
    """The sample's texts per transformer batch: at most ``CPU_BATCH`` on a CPU, ``--batch-size`` elsewhere."""
    return min(batch_size, CPU_BATCH) if on_cpu else batch_size


def row_map(sample: TeacherSample, texts, cfg: EmbedConfig, static, out: Path, resumed: bool) -> Path:
    """``out/static_map.npy``: the affine map from ``static``'s vectors to the transformer's, fitted on the
    sample (kept as it is when ``resumed``: the rows embedded so far went through it)."""
    from smart_cli.backends.mapped import fit_affine

    path = out / STATIC_MAP
    if resumed and path.is_file():
        return path
    base = static.encode(_texts(texts[sample.positions.tolist()], cfg))
    with artifacts.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, fit_affine(base, sample.vectors), allow_pickle=False)
    return path


def token_table(
    sample: TeacherSample, texts, cfg: EmbedConfig, static, out: Path, resumed: bool, reporter: Reporter
) -> Path:
    """``out/static_tokens.npy``: token vectors in the transformer's space fitted on the sample
    (``embed/token_fit.py``), started from the affine map; kept as it is when ``resumed``."""
    from smart_cli.backends.mapped import fit_affine
    from smart_cli.backends.token_mapped import static_norms
    from smart_cli.embed.token_fit import FIT, fit_tokens, fixed_product

    path = out / STATIC_TOKENS
    if resumed and path.is_file():
        return path
    picked = _texts(texts[sample.positions.tolist()], cfg)
    sums = static.sums(picked)
    norms = static_norms(sums, int(static.dim))
    affine = fit_affine(sums.astype(np.float64) / np.maximum(norms, 1e-300)[:, None], sample.vectors)
    window = static.max_seq_length or None
    ids = [np.asarray(x[:window], dtype=np.int64) for x in static.token_ids(picked)]
    table = fixed_product(np.ascontiguousarray(static.token_vectors(), dtype=np.float32), affine[:-1])
    start = table[np.unique(np.concatenate([np.zeros(0, np.int64), *ids]))]
    with reporter.progress(f"fitting token vectors on {len(ids):,} rows", FIT.epochs) as advance:
        fit = fit_tokens(ids, norms, sample.vectors, start, affine[-1], FIT, advance)
    table[fit.tokens] = fit.vectors
    with artifacts.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.vstack([table, fit.bias[None, :]]).astype(np.float32), allow_pickle=False)
    return path


def write_task_means(sample: TeacherSample, cfg: EmbedConfig, out: Path, stored: np.ndarray) -> dict:
    """``out/task_means.npy`` from the sample and every row's ``stored`` vectors; its ``meta.json`` record."""
    means = estimate(stored, sample.codes, sample.positions, sample.vectors, sample.n_tasks)
    with artifacts.atomic_path(out / TASK_MEANS) as tmp, open(tmp, "wb") as fh:
        np.save(fh, means, allow_pickle=False)
    return {
        **teacher_record(cfg),
        "encoder": sample.encoder,
        "dim": int(means.shape[1]),
        "rows_embedded": int(len(sample.positions)),
        "sha256": artifacts.sha256_file(out / TASK_MEANS),
    }


def map_record(sample: TeacherSample, cfg: EmbedConfig, out: Path) -> dict:
    """``meta.json``'s record of the row map."""
    return {
        **map_method(cfg),
        "encoder": sample.encoder,
        "fitted_rows": int(len(sample.positions)),
        "file": map_file(cfg),
        "sha256": artifacts.sha256_file(out / map_file(cfg)),
    }


def map_file(cfg: EmbedConfig) -> str:
    """The file in ``EMB_DIR`` that holds a static folder's row map."""
    return STATIC_TOKENS if cfg.row_kind == "tokens" else STATIC_MAP


def forget_sample(out: Path) -> None:
    """The finished folder keeps the means and the map, not the sample's vectors."""
    for old in out.glob(f"{TEACHER_SAMPLE}-*.npy"):
        old.unlink(missing_ok=True)
