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
