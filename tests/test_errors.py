"""Every user mistake: one readable line on stderr, exit 2 (usage) or 1 (data), no traceback, no output.

Each case builds its broken input in code (a damaged copy of the session's embeddings folder, an
edited tasks or samples file, a tiny dataset) and runs the real CLI through Typer's runner.
"""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import write_parquet
from typer.testing import CliRunner

from smart_cli.artifacts import open_embeddings, write_json, write_samples
from smart_cli.cli import app
from smart_cli.select_samples import select_samples
from smart_cli.select_tasks import TaskConfig, select_tasks

runner = CliRunner()


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(r, code: int, message: str, out: Path) -> None:
    """Exit ``code``, one ``error:`` line holding ``message``, no traceback, nothing at ``out``."""
    assert r.exit_code == code, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.output
    assert message in errors[0], r.output
    assert "Traceback" not in r.output
    assert not out.exists(), f"{out} was left behind"
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "a temporary file was left behind"


@pytest.fixture(scope="module")
def chain(tiny_emb, tmp_path_factory) -> Path:
    """tasks.json and samples.parquet of the session embeddings (3 tasks, 20 rows)."""
    d = tmp_path_factory.mktemp("chain")
    es = open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=3, budget=20))
    write_json(d / "tasks.json", doc)
    write_samples(select_samples(es, doc), d / "samples.parquet")
    return d


def emb_copy(tiny_emb: str, tmp_path: Path) -> Path:
    dst = tmp_path / "emb"
    shutil.copytree(tiny_emb, dst)
    return dst


# --------------------------------------------------------------------------------------- embed


def _rows(n: int = 4) -> list[dict]:
    return [
        {"inputs": f"prompt {i}", "targets": f"answer {i}", "task_name": f"t{i % 2}", "template_type": "zs_opt"}
        for i in range(n)
    ]


def _empty_parquet(tmp: Path) -> str:
    schema = pa.schema([(c, pa.string()) for c in ("inputs", "targets", "task_name", "template_type")])
    pq.write_table(schema.empty_table(), tmp / "empty.parquet")
    return str(tmp / "empty.parquet")


def _blank_jsonl(tmp: Path) -> str:
    (tmp / "blank.jsonl").write_text("\n\n")
    return str(tmp / "blank.jsonl")


def _dataset_dict(tmp: Path) -> str:
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(_rows())}).save_to_disk(str(tmp / "dd"))
    return str(tmp / "dd")


def _null_tasks(tmp: Path) -> str:
    rows = _rows()
    rows[1]["task_name"] = None
    return write_parquet(rows, tmp / "nulltask.parquet")


def _other_files(tmp: Path) -> list:
    (tmp / "busy").mkdir()
    (tmp / "busy" / "notes.txt").write_text("mine")
    return []


EMBED_CASES: dict[str, tuple[Callable[[Path, str], list], int, str]] = {
    "missing file": (lambda t, d: [t / "nope.parquet"], 1, "dataset not found: "),
    "missing hub name": (lambda t, d: ["no_such_dataset_xyz"], 1, "dataset not found: 'no_such_dataset_xyz'"),
    "glob matches nothing": (lambda t, d: [str(t / "zz*.parquet")], 1, "no files match"),
    "unknown split of files": (lambda t, d: [d, "--split", "test"], 2, "unknown split 'test'"),
    "unknown split of a DatasetDict": (lambda t, d: [_dataset_dict(t), "--split", "test"], 2, "it has: train"),
    "missing prompt column": (
        lambda t, d: [d, "--prompt-column", "input"],
        1,
        "column 'input' (--prompt-column) not in the dataset; it has: inputs, targets, task_name, task_source, "
        "template_type; did you mean 'inputs'?",
    ),
    "missing task column": (lambda t, d: [d, "--task-column", "task"], 1, "did you mean 'task_name'?"),
    "missing template column": (lambda t, d: [d, "--template-column", "tmpl"], 1, "(--template-column) not in"),
    "empty parquet": (lambda t, d: [_empty_parquet(t)], 1, "the dataset is empty"),
    "blank jsonl": (lambda t, d: [_blank_jsonl(t)], 1, "the dataset is empty"),
    "null task": (lambda t, d: [_null_tasks(t)], 1, "1 rows have no task"),
    "unknown text": (lambda t, d: [d, "--text", "response"], 2, "unknown --text 'response'"),
    "unknown dtype": (lambda t, d: [d, "--dtype", "int8"], 2, "unknown --dtype 'int8'"),
    "unknown backend": (lambda t, d: [d, "--backend", "onnx"], 2, "unknown --backend 'onnx'"),
    "bad shard size": (lambda t, d: [d, "--shard-rows", "0"], 2, "--shard-rows must be at least 1"),
    "unknown model": (lambda t, d: [d, "--model", "no-such-org/no-such-model"], 1, "cannot load model"),
    "out under a file": (lambda t, d: [d, "--out", Path(d) / "sub"], 1, "is a file, not a directory"),
    "out is a folder of other files": (lambda t, d: [d, *_other_files(t), "--out", t / "busy"], 2, "other files"),
}


@pytest.mark.parametrize("case", list(EMBED_CASES))
def test_embed_mistakes(case, tiny_dataset, tmp_path):
    build, code, message = EMBED_CASES[case]
    args = build(tmp_path, tiny_dataset)
    out = tmp_path / "out"
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
    else:
        args += ["--out", out]
    r = invoke("embed", *args)
    if case == "out is a folder of other files":
        assert r.exit_code == code and message in r.output and "Traceback" not in r.output
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
        return
    assert_refused(r, code, message, out)


# -------------------------------------------------------------------------------- select-tasks


def _truncate(emb: Path) -> None:
    data = (emb / "embeddings.npy").read_bytes()
    (emb / "embeddings.npy").write_bytes(data[: len(data) // 2])


def _truncate_header(emb: Path) -> None:
    (emb / "embeddings.npy").write_bytes((emb / "embeddings.npy").read_bytes()[:40])


def _garbage(emb: Path) -> None:
    (emb / "embeddings.npy").write_bytes(b"this is not an array")


def _extra_bytes(emb: Path) -> None:
    with open(emb / "embeddings.npy", "ab") as fh:
        fh.write(b"\0" * 16)


def _poke(value: float, row: int = 5, col: int | slice = slice(None)) -> Callable[[Path], None]:
    def damage(emb: Path) -> None:
        m = np.load(emb / "embeddings.npy", mmap_mode="r+", allow_pickle=False)
        m[row, col] = value
        m.flush()
        del m

    return damage


def _swap_vectors(emb: Path) -> None:
    m = np.load(emb / "embeddings.npy", allow_pickle=False)
    np.save(emb / "embeddings.npy", m[::-1].copy())


def _edit_meta(**changes) -> Callable[[Path], None]:
    def damage(emb: Path) -> None:
        meta = json.loads((emb / "meta.json").read_text())
        meta.update(changes)
        (emb / "meta.json").write_text(json.dumps(meta))

    return damage


def _other_rows(emb: Path) -> None:
    table = pq.read_table(emb / "rows.parquet")
    tasks = table.column("task").to_pylist()
    tasks[0] = "renamed"
    pq.write_table(table.set_column(1, "task", pa.array(tasks)), emb / "rows.parquet")


def _fewer_rows(emb: Path) -> None:
    pq.write_table(pq.read_table(emb / "rows.parquet").slice(0, 40), emb / "rows.parquet")


def _unfinished(emb: Path) -> None:
    (emb / "meta.json").unlink()
    (emb / ".embed-progress.json").write_text(json.dumps({"done": 32}))


EMB_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated embeddings.npy": (_truncate, "is truncated or corrupt"),
    "truncated header": (_truncate_header, "is truncated or corrupt"),
    "not an npy file": (_garbage, "is not a .npy file"),
    "extra bytes": (_extra_bytes, "not the 124,544 its header promises"),
    "NaN vector": (_poke(np.nan, col=3), "has NaN or infinite values in 1 row (first: row 5)"),
    "infinite vector": (_poke(np.inf, row=7, col=0), "(first: row 7)"),
    "zero vector": (_poke(0.0), "has 1 all-zero vector (first: row 5) that embed did not write"),
    "vectors from elsewhere": (_swap_vectors, "embeddings.npy does not match"),
    "meta from elsewhere (rows)": (_edit_meta(rows=80), "has shape (81, 384) but"),
    "meta from elsewhere (dtype)": (_edit_meta(dtype="float16"), "holds float32 but"),
    "meta not JSON": (lambda e: (e / "meta.json").write_text("{oops"), "is not valid JSON"),
    "rows from elsewhere (content)": (_other_rows, "rows.parquet does not match"),
    "rows from elsewhere (count)": (_fewer_rows, "rows.parquet has 40 rows but"),
    "rows.parquet missing": (lambda e: (e / "rows.parquet").unlink(), "rows.parquet not found"),
    "embeddings.npy missing": (lambda e: (e / "embeddings.npy").unlink(), "embeddings.npy not found"),
    "embed did not finish": (_unfinished, "embed did not finish (32 rows embedded so far); run the same"),
}


@pytest.mark.parametrize("case", list(EMB_CASES))
def test_damaged_embeddings_are_refused(case, tiny_emb, tmp_path):
    damage, message = EMB_CASES[case]
    emb = emb_copy(tiny_emb, tmp_path)
    damage(emb)
    out = tmp_path / "tasks.json"
    assert_refused(invoke("select-tasks", emb, "-m", "2", "-n", "5", "--out", out), 1, message, out)


@pytest.mark.parametrize(
    "case", ["NaN vector", "zero vector", "truncated embeddings.npy", "rows from elsewhere (count)"]
)
def test_damaged_embeddings_are_refused_by_select_samples(case, tiny_emb, chain, tmp_path):
    damage, message = EMB_CASES[case]
    emb = emb_copy(tiny_emb, tmp_path)
    damage(emb)
    out = tmp_path / "samples.parquet"
    assert_refused(invoke("select-samples", emb, chain / "tasks.json", "--out", out), 1, message, out)


def test_large_files_are_checked_where_rows_are_read(tiny_emb, tmp_path, monkeypatch):
    """Above VERIFY_BYTES the open skips the full scan; the task means and each group still refuse NaN."""
    from smart_cli.artifacts import embeddings

    monkeypatch.setattr(embeddings, "VERIFY_BYTES", 0)
    emb = emb_copy(tiny_emb, tmp_path)
    _poke(np.nan, row=9, col=1)(emb)
    open_embeddings(emb)  # no full scan: shape, dtype and size are fine
    out = tmp_path / "tasks.json"
    # --no-cache: the copy holds the task order other tests cached, and a cached order reads no rows
    cmd = ["select-tasks", emb, "-m", "2", "-n", "5", "--out", out, "--no-cache"]
    assert_refused(invoke(*cmd), 1, "(first: row 9)", out)


SELECT_TASKS_CASES = {
    "no tasks": (["-m", "0", "-n", "5"], 2, "--num-tasks must be between 1 and 8 (the number of tasks), got 0"),
    "too many tasks": (["-m", "9", "-n", "5"], 2, "between 1 and 8 (the number of tasks), got 9"),
    "no budget": (["-m", "2", "-n", "0"], 2, "--budget must be at least 1, got 0"),
    "budget above what the tasks hold": (["-m", "2", "-n", "37"], 2, "at most 36 rows"),
    "budget above the whole dataset": (["-m", "8", "-n", "82"], 2, "at most 81 rows"),
    "unknown function": (["-m", "2", "-n", "5", "--function", "xx"], 2, "unknown --function 'xx'; choose from"),
    "NaN lambda": (["-m", "2", "-n", "5", "--lambda", "nan"], 2, "--lambda must be a finite number >= 0"),
    "negative lambda": (["-m", "2", "-n", "5", "--lambda", "-1"], 2, "--lambda must be a finite number >= 0"),
}


@pytest.mark.parametrize("case", list(SELECT_TASKS_CASES))
def test_select_tasks_mistakes(case, tiny_emb, tmp_path):
    args, code, message = SELECT_TASKS_CASES[case]
    out = tmp_path / "tasks.json"
    assert_refused(invoke("select-tasks", tiny_emb, *args, "--out", out), code, message, out)


def test_budget_is_refused_before_any_work(tiny_emb, tmp_path, monkeypatch):
    import smart_cli.select_tasks as st

    def never(*a, **k):
        raise AssertionError("task means computed for an impossible budget")

    monkeypatch.setattr(st, "stage1_means", never)
    out = tmp_path / "tasks.json"
    assert_refused(invoke("select-tasks", tiny_emb, "-m", "2", "-n", "37", "--out", out), 2, "at most 36", out)


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        ("{missing}", 1, "embeddings directory not found"),
        ("{file}", 1, "is a file, not a folder written by smart-cli embed"),
        ("{empty}", 1, "is not a folder written by smart-cli embed"),
    ],
)
def test_missing_embeddings_folder(where, code, message, tiny_dataset, tmp_path):
    (tmp_path / "empty").mkdir()
    emb = where.format(missing=tmp_path / "nope", file=tiny_dataset, empty=tmp_path / "empty")
    out = tmp_path / "tasks.json"
    assert_refused(invoke("select-tasks", emb, "-m", "2", "-n", "5", "--out", out), code, message, out)


# ------------------------------------------------------------------------------ select-samples


def _edit_tasks(edit: Callable[[dict], None]) -> Callable[[Path, Path], Path]:
    def make(chain: Path, tmp: Path) -> Path:
        doc = json.loads((chain / "tasks.json").read_text())
        edit(doc)
        (tmp / "t.json").write_text(json.dumps(doc))
        return tmp / "t.json"

    return make


def _set(path: str, value):
    def edit(doc: dict) -> None:
        *keys, last = path.split(".")
        node = doc
        for k in keys:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = value

    return edit


def _text(content: str) -> Callable[[Path, Path], Path]:
    def make(chain: Path, tmp: Path) -> Path:
        (tmp / "t.json").write_text(content)
        return tmp / "t.json"

    return make


TASKS_CASES = {
    "missing": (lambda c, t: t / "nope.json", "tasks file not found"),
    "not JSON": (_text('{"tasks": ['), "is not valid JSON"),
    "not a tasks file": (_text('{"hello": 1}'), "is not a tasks file written by smart-cli select-tasks"),
    "other embeddings": (_edit_tasks(_set("embeddings.fingerprint", "0" * 16)), "was made from other embeddings than"),
    "unknown task": (_edit_tasks(_set("tasks.0.task", "no_such_task")), "names tasks not in"),
    "wrong task size": (_edit_tasks(_set("tasks.0.size", 99)), "they do not belong together"),
    "budgets do not add up": (_edit_tasks(_set("budget", 21)), "budgets add up to 20, not the file's budget 21"),
    "negative budget": (_edit_tasks(_set("tasks.0.budget", -1)), "whole numbers >= 0"),
    "budget above size": (_edit_tasks(_set("tasks.1.budget", 10_000)), "but only"),
    "task twice": (_edit_tasks(lambda d: d["tasks"].append(dict(d["tasks"][0]))), "more than once"),
}


@pytest.mark.parametrize("case", list(TASKS_CASES))
def test_bad_tasks_file(case, tiny_emb, chain, tmp_path):
    make, message = TASKS_CASES[case]
    out = tmp_path / "samples.parquet"
    r = invoke("select-samples", tiny_emb, make(chain, tmp_path), "--out", out)
    assert_refused(r, 1, message, out)


def test_select_samples_unknown_function(tiny_emb, chain, tmp_path):
    out = tmp_path / "samples.parquet"
    r = invoke("select-samples", tiny_emb, chain / "tasks.json", "--function", "nope", "--out", out)
    assert_refused(r, 2, "unknown --function 'nope'", out)


def test_select_samples_out_is_a_directory(tiny_emb, chain, tmp_path):
    r = invoke("select-samples", tiny_emb, chain / "tasks.json", "--out", tmp_path)
    assert r.exit_code == 1 and "it is a directory" in r.output and "Traceback" not in r.output


# -------------------------------------------------------------------------------------- export


def _edit_samples(edit: Callable[[pa.Table], pa.Table]) -> Callable[[Path, Path, str], list]:
    def make(chain: Path, tmp: Path, data: str) -> list:
        table = pq.read_table(chain / "samples.parquet")
        pq.write_table(edit(table).replace_schema_metadata(table.schema.metadata), tmp / "s.parquet")
        return [tmp / "s.parquet"]

    return make


def _row_column(table: pa.Table, rows: list[int]) -> pa.Table:
    return table.set_column(table.column_names.index("row"), "row", pa.array(rows, pa.int64()))


def _moved_dataset(chain: Path, tmp: Path, data: str) -> list:
    table = pq.read_table(chain / "samples.parquet")
    meta = json.loads(table.schema.metadata[b"smart_cli"])
    meta["dataset"]["path"] = str(tmp / "moved.parquet")
    pq.write_table(table.replace_schema_metadata({b"smart_cli": json.dumps(meta)}), tmp / "s.parquet")
    return [tmp / "s.parquet"]


def _reversed_dataset(chain: Path, tmp: Path, data: str) -> list:
    rows = pq.read_table(data).to_pylist()[::-1]
    return [chain / "samples.parquet", "--dataset", write_parquet(rows, tmp / "rev.parquet")]


EXPORT_CASES = {
    "samples missing": (lambda c, t, d: [t / "nope.parquet"], "samples file not found"),
    "samples not parquet": (lambda c, t, d: [Path(d).parent / "x.txt"], "is not readable parquet"),
    "plain parquet": (lambda c, t, d: [d], "is not a samples file written by smart-cli select-samples"),
    "row not in the dataset": (
        _edit_samples(lambda tb: _row_column(tb, [999] + tb.column("row").to_pylist()[1:])),
        "names row 999, but",
    ),
    "row twice": (
        _edit_samples(lambda tb: _row_column(tb, tb.column("row").to_pylist()[:1] * tb.num_rows)),
        "names some rows twice",
    ),
    "rows dropped": (_edit_samples(lambda tb: tb.slice(0, 5)), "has 5 rows but records a budget of 20"),
    "dataset of another size": (
        lambda c, t, d: [c / "samples.parquet", "--dataset", write_parquet(_rows(), t / "small.parquet")],
        "has 4 rows but",
    ),
    "dataset of the same size, other rows": (_reversed_dataset, "they do not belong together"),
    "dataset moved": (_moved_dataset, "moved.parquet, which"),
    "dataset missing": (lambda c, t, d: [c / "samples.parquet", "--dataset", t / "gone.parquet"], "not found"),
    "dataset without the columns": (
        lambda c, t, d: [
            c / "samples.parquet",
            "--dataset",
            write_parquet([{"a": i, "b": i, "c": i} for i in range(81)], t / "abc.parquet"),
        ],
        "column 'inputs' (--prompt-column) not in the dataset; it has: a, b, c",
    ),
}


@pytest.mark.parametrize("case", list(EXPORT_CASES))
def test_export_mistakes(case, chain, tiny_dataset, tmp_path):
    make, message = EXPORT_CASES[case]
    (Path(tiny_dataset).parent / "x.txt").write_text("not parquet")
    out = tmp_path / "mix" / "mixture.jsonl"
    r = invoke("export", *make(chain, tmp_path, tiny_dataset), "--out", out)
    assert_refused(r, 1, message, out)
    assert not (tmp_path / "mix").exists()  # no folder made for it either


# ------------------------------------------------------------------------------- recipes (run)

RECIPES = {
    "python tag": (
        "dataset: !!python/object/apply:os.system ['echo unsafe']\nout: {out}\nselect_tasks: {{budget: 5}}\n",
        2,
        "recipes are plain data; could not determine a constructor for the tag",
    ),
    "not YAML": ("dataset: [unclosed\n", 2, "is not valid YAML"),
    "budget of the wrong kind": (
        "dataset: {data}\nout: {out}\nselect_tasks: {{num_tasks: 2, budget: five}}\n",
        2,
        "'budget' must be a whole number, got 'five'",
    ),
    "negative seed": (
        "dataset: {data}\nout: {out}\nseed: -1\nselect_tasks: {{num_tasks: 2, budget: 5}}\n",
        2,
        "'seed' must be >= 0",
    ),
    "unknown key": (
        "dataset: {data}\nout: {out}\nselect_tasks: {{num_taks: 2, budget: 5}}\n",
        2,
        "did you mean 'num_tasks'?",
    ),
    "out under a file": (
        "dataset: {data}\nout: {data}/run\nselect_tasks: {{num_tasks: 2, budget: 5}}\n",
        1,
        "is a file, not a directory",
    ),
}


@pytest.mark.parametrize("case", list(RECIPES))
def test_recipe_mistakes(case, tiny_dataset, tmp_path):
    text, code, message = RECIPES[case]
    out = tmp_path / "run"
    (tmp_path / "r.yaml").write_text(text.format(data=tiny_dataset, out=out))
    assert_refused(invoke("run", tmp_path / "r.yaml"), code, message, out)


def test_missing_recipe(tmp_path):
    assert_refused(invoke("run", tmp_path / "nope.yaml"), 1, "recipe not found", tmp_path / "nope.yaml")


def test_recipe_is_loaded_with_safe_load(tmp_path):
    """A python tag is refused by the loader: nothing is constructed, nothing runs."""
    marker = tmp_path / "ran"
    (tmp_path / "r.yaml").write_text(
        f"dataset: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
    )
    r = invoke("run", tmp_path / "r.yaml")
    assert r.exit_code == 2 and not marker.exists()


def test_typer_usage_error_exits_2(tiny_emb, tmp_path):
    r = invoke("select-tasks", tiny_emb, "-m", "2", "--out", tmp_path / "t.json")
    assert r.exit_code == 2 and "Missing option" in r.output


def test_negative_seed_is_a_usage_error(tiny_emb, tmp_path):
    r = invoke("select-tasks", tiny_emb, "-m", "2", "-n", "5", "--seed", "-1", "--out", tmp_path / "t.json")
    assert r.exit_code == 2 and "Traceback" not in r.output and not (tmp_path / "t.json").exists()


# ------------------------------------------------------------------------ unexpected failures


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            ValueError("boom [bold]x[/bold]"),
            "error: ValueError: boom [bold]x[/bold]; run with --debug for the traceback",
        ),
        (OSError(28, "No space left on device", "/some/file"), "OSError: /some/file: No space left on device"),
        (MemoryError(), "error: out of memory; run with --debug"),
        (KeyboardInterrupt(), "error: interrupted"),
    ],
)
def test_unexpected_errors_are_one_line(exc, message, tiny_emb, tmp_path, monkeypatch):
    import smart_cli.select_tasks as st

    def fail(*a, **k):
        raise exc

    monkeypatch.setattr(st, "stage1_means", fail)
    out = tmp_path / "t.json"
    r = invoke("select-tasks", tiny_emb, "-m", "2", "-n", "5", "--out", out, "--no-cache")  # the means are computed
    assert r.exit_code == (130 if isinstance(exc, KeyboardInterrupt) else 1), r.output
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_debug_shows_the_traceback(tiny_emb, tmp_path, monkeypatch):
    import smart_cli.select_tasks as st

    def fail(*a, **k):
        raise ValueError("boom")

    monkeypatch.setattr(st, "stage1_means", fail)
    args = ["--debug", "select-tasks", tiny_emb, "-m", "2", "-n", "5", "--out", str(tmp_path / "t"), "--no-cache"]
    r = runner.invoke(app, args)
    assert isinstance(r.exception, ValueError)  # re-raised: Python prints the traceback
    r = runner.invoke(app, ["--debug", "select-tasks", tiny_emb, "-m", "0", "-n", "5", "--out", str(tmp_path / "t")])
    assert type(r.exception).__name__ == "UsageError"


# --------------------------------------------------------------------------------- safe defaults


def test_trust_remote_code_is_off_unless_asked(tmp_path, monkeypatch):
    import datasets

    from smart_cli import backends
    from smart_cli.errors import DataError

    seen: dict[str, list] = {"dataset": [], "model": []}

    def fake_load_dataset(spec, split=None, **kwargs):
        seen["dataset"].append(kwargs.get("trust_remote_code", False))
        return datasets.Dataset.from_list(_rows())

    def fake_encoder(*args, trust_remote_code=False, **kwargs):
        seen["model"].append(trust_remote_code)
        raise DataError("stop here")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(backends, "load_encoder", fake_encoder)
    out = tmp_path / "emb"
    assert_refused(invoke("embed", "some-org/some-dataset", "--out", out), 1, "stop here", out)
    assert_refused(invoke("embed", "some-org/some-dataset", "--out", out, "--trust-remote-code"), 1, "stop", out)
    assert seen == {"dataset": [False, True], "model": [False, True]}


def test_no_pickle_anywhere():
    """Every np.load passes allow_pickle=False; nothing imports pickle or calls yaml.load/torch.load."""
    root = Path(__file__).resolve().parents[1] / "smart_cli"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "cloudpickle", "dill") for n in names), path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = ast.unparse(node.func.value)
                if node.func.attr == "load" and owner in ("np", "numpy"):
                    kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    assert kw.get("allow_pickle") == "False", f"{path}:{node.lineno} np.load without allow_pickle=False"
                assert (owner, node.func.attr) not in {("yaml", "load"), ("torch", "load"), ("pickle", "loads")}, path
