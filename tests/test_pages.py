"""Dropping the dataset's memory-mapped Arrow pages once their text is read (dataset_pages.py)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from smart_cli import dataset_pages as pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps is Linux's")


def _mapped_kib(files: frozenset[str]) -> int:
    """Resident KiB of this process's maps of ``files`` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                inside = len(head) >= 6 and os.path.realpath(line.split(maxsplit=5)[5].strip()) in files
            elif inside and head[:1] == ["Rss:"]:
                total += int(head[1])
    return total


@pytest.fixture()
def arrow_dataset(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    prompts = [" ".join(rng.choice(words, 400)) for _ in range(3000)]  # ~8 MB of text
    datasets.Dataset.from_dict({"inputs": prompts, "targets": [p[:20] for p in prompts]}).save_to_disk(
        str(tmp_path / "ds")
    )
    return datasets.load_from_disk(str(tmp_path / "ds")), prompts


def test_a_read_dataset_drops_its_pages_and_still_reads_the_same(arrow_dataset):
    ds, prompts = arrow_dataset
    files = pages.dataset_files(ds)
    assert files and all(f.endswith(".arrow") for f in files)
    assert ds[:]["inputs"] == prompts  # every page touched
    before = _mapped_kib(files)
    assert before > 4096  # the text is resident through the map
    advised = pages.release_dataset_pages(files)
    assert advised >= before * 1024
    assert _mapped_kib(files) < before / 10
    assert ds[:]["inputs"] == prompts  # read again from the file, unchanged


def test_only_read_only_maps_of_the_named_files(tmp_path, arrow_dataset):
    ds, _ = arrow_dataset
    maps = tmp_path / "maps"
    arrow = sorted(pages.dataset_files(ds))[0]
    maps.write_text(
        f"7f0000000000-7f0000002000 r--s 00000000 00:10 42 {arrow}\n"
        f"7f0000003000-7f0000004000 rw-p 00000000 00:10 42 {arrow}\n"
        "7f0000005000-7f0000006000 r--p 00000000 00:10 43 /some/other.arrow\n"
        "7f0000007000-7f0000008000 rw-p 00000000 00:00 0 \n"
    )
    assert pages.read_only_maps({arrow}, str(maps)) == [(0x7F0000000000, 0x7F0000002000)]
    assert pages.read_only_maps(set(), str(maps)) == []


def test_a_dataset_in_memory_has_no_files_and_nothing_is_advised():
    import datasets

    ds = datasets.Dataset.from_dict({"inputs": ["a b c"] * 10})
    assert pages.dataset_files(ds) == frozenset()
    assert pages.release_dataset_pages(pages.dataset_files(ds)) == 0


def test_encode_shard_leaves_no_text_pages_resident(arrow_dataset, static_encoder):
    from smart_cli.embed.config import EmbedConfig
    from smart_cli.embed.shards import Shards, encode_shard

    ds, prompts = arrow_dataset
    files = pages.dataset_files(ds)
    shards = Shards(ds, EmbedConfig(backend="static"), static_encoder)
    vectors, _ = encode_shard(shards, (0, len(prompts)))
    assert _mapped_kib(files) < 1024  # 8 MB of text read, under 1 MB of it left resident
    assert np.array_equal(vectors, static_encoder.encode(prompts).astype(vectors.dtype))


def test_export_leaves_no_text_pages_resident(arrow_dataset):
    import pyarrow as pa

    from smart_cli.export import mixture_records
    from smart_cli.formats import LineFormat

    ds, prompts = arrow_dataset
    files = pages.dataset_files(ds)
    picked = list(range(0, len(prompts), 2))
    table = pa.table({"row": picked, "task": ["t"] * len(picked)})
    meta = {"columns": {"prompt": "inputs", "response": "targets"}}
    records = list(mixture_records(table, meta, ds, 0, LineFormat()))
    assert sorted(row for _, _, row in records) == picked
    assert all(rec["prompt"] == prompts[row] for rec, _, row in records)
    assert _mapped_kib(files) < 1024  # 4 MB of text gathered, under 1 MB of it left resident
