"""Tiny FLAN-style data built in code: the rows and files the tests and fixtures share."""

from __future__ import annotations

TOPICS = {
    "sentiment": ["the movie was {} and the acting {}", "this restaurant is {} and the staff {}"],
    "math": ["what is {} plus {}?", "if you have {} apples and get {} more, how many?"],
    "translate": ["translate to french: the {} cat sleeps {}", "translate to german: a {} house stands {}"],
    "trivia": ["who wrote the {} book about {}?", "which {} city is known for {}?"],
}
WORDS = ["red", "quiet", "great", "awful", "big", "old", "new", "bright", "dark", "early", "late", "calm"]
TEMPLATES = ["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"]


def make_rows(sizes: dict[str, int], with_templates: bool = True) -> list[dict]:
    """Rows of tasks named ``<topic>_<k>`` with the given sizes; deterministic, no randomness."""
    rows = []
    for t, (task, size) in enumerate(sizes.items()):
        topic = task.split("_")[0]
        forms = TOPICS[topic]
        for i in range(size):
            a, b = WORDS[(i + t) % len(WORDS)], WORDS[(3 * i + 2 * t + 1) % len(WORDS)]
            row = {
                "inputs": forms[i % len(forms)].format(a, b) + f" (case {i // 3})",
                "targets": f"answer {i} of {task}",
                "task_name": task,
                "task_source": "niv2" if t % 2 else "flan2021",
            }
            if with_templates:
                row["template_type"] = TEMPLATES[(i * 7 + t) % 4 if t % 3 else i % 2]
            rows.append(row)
    return rows


SIZES = {
    "sentiment_0": 14,
    "sentiment_1": 9,
    "math_0": 20,
    "math_1": 6,
    "translate_0": 12,
    "translate_1": 3,
    "trivia_0": 16,
    "trivia_1": 1,
}


def write_parquet(rows: list[dict], path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def clustered(n: int, d: int, rng, centres: int = 12):
    """``n`` unit vectors around ``centres`` random centres, like the rows of one task."""
    import numpy as np

    mean = rng.standard_normal((centres, d))
    x = mean[rng.integers(0, centres, n)] + 0.45 * rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_emb_dir(path, tasks: dict[str, int], dtype: str = "float32", d: int = 48):
    """An EMB_DIR as embed writes it, from clustered unit vectors (one cluster set per task, two
    templates split unevenly), without a model: for selection tests at sizes embedding would slow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from smart_cli import artifacts

    rng = np.random.default_rng(5)
    vecs, names, templates = [], [], []
    for name, size in tasks.items():
        vecs.append(clustered(size, d, rng))
        names += [name] * size
        templates += [("zs_opt", "fs_opt")[i % 3 == 0] for i in range(size)]
    emb = np.concatenate(vecs).astype(dtype)
    path.mkdir(parents=True)
    np.save(path / artifacts.EMBEDDINGS, emb)
    n = len(names)
    pq.write_table(
        pa.table({"row": np.arange(n, dtype=np.int64), "task": names, "template_type": templates}),
        path / artifacts.ROWS,
    )
    meta = {
        "format": "smart-cli/embeddings",
        "rows": n,
        "dim": d,
        "dtype": dtype,
        "fingerprint": f"synthetic-{dtype}",
        "rows_sha256": artifacts.sha256_file(path / artifacts.ROWS),
        "embeddings_sha256": artifacts.sha256_file(path / artifacts.EMBEDDINGS),
    }
    artifacts.write_json(path / artifacts.META, meta)
    return artifacts.open_embeddings(path)


CHAT_TOPICS = {
    "math": ("what is {a} plus {b}?", "it is {c}."),
    "cooking": ("how long should I boil a {w} egg for {a} minutes?", "boil it {c} minutes, then cool it."),
    "travel": ("which {w} city should I visit in {a} days?", "try a {w} city with {b} museums."),
    "code": ("write a {w} function that adds {a} and {b}", "def add(): return {c}"),
}


def make_chat_rows(per_source: int = 6, form: str = "messages") -> list[dict]:
    """Tulu-style ``messages`` (or ShareGPT ``conversations``) rows with an ``id`` and a ``source``:
    one to three exchanges, a system turn on every third row. Deterministic, no randomness."""
    rows = []
    for s, (source, (ask, answer)) in enumerate(CHAT_TOPICS.items()):
        for i in range(per_source):
            fill = {"a": i + s, "b": 2 * i + 1, "c": 3 * i + s, "w": WORDS[(i + s) % len(WORDS)]}
            turns = [{"role": "system", "content": f"You are a {fill['w']} helper."}] if i % 3 == 0 else []
            for k in range(1 + i % 3):
                turns.append({"role": "user", "content": ask.format(**fill) + (f" (again {k})" if k else "")})
                turns.append({"role": "assistant", "content": answer.format(**fill) + (f" [{k}]" if k else "")})
            if form == "conversations":
                names = {"system": "system", "user": "human", "assistant": "gpt"}
                turns = [{"from": names[t["role"]], "value": t["content"]} for t in turns]
            rows.append({"id": f"{source}-{i}", "source": source, form: turns})
    return rows
