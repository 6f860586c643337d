"""Chat collections: conversations in (messages or ShareGPT form), a SMART mixture of them out."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from helpers import make_chat_rows, write_parquet
from hypothesis import given
from hypothesis import strategies as st
from reference import reference_mixture
from typer.testing import CliRunner

from smart_cli import artifacts, chat
from smart_cli.cli import app
from smart_cli.formats import LineFormat

runner = CliRunner()

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("mode", "system", "expected"),
    [
        ("prompt", "keep", "system: Be brief.\nuser: Hi\nassistant: Hello.\nuser: 2+2?"),
        ("prompt", "drop", "user: Hi\nassistant: Hello.\nuser: 2+2?"),
        ("last-user", "keep", "2+2?"),
        ("user", "keep", "user: Hi\nuser: 2+2?"),
        ("conversation", "keep", "system: Be brief.\nuser: Hi\nassistant: Hello.\nuser: 2+2?\nassistant: 4"),
        ("conversation", "drop", "user: Hi\nassistant: Hello.\nuser: 2+2?\nassistant: 4"),
    ],
)
def test_text_of_a_conversation(mode, system, expected):
    assert chat.text(chat.turns(CONVERSATION), mode, system) == expected


def test_sharegpt_form_and_role_map():
    sharegpt = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]
    assert chat.turns(sharegpt) == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    custom = [{"from": "narrator", "value": "Once."}, {"from": "Human", "value": "Hi"}, {"from": "bot", "value": "Yo"}]
    roles = chat.parse_role_map("bot=assistant, narrator=system")
    assert [t["role"] for t in chat.turns(custom, roles)] == ["system", "user", "assistant"]
    with pytest.raises(ValueError, match="NAME=ROLE"):
        chat.parse_role_map("bot=robot")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("hello", "not a list of turns"),
        ([{"role": "user"}], "turn 1 has no content"),
        ([{"content": "x"}], "turn 1 has no role"),
        ([{"role": "user", "content": "hi"}], "no assistant turn"),
        ([{"role": "wizard", "content": "hi"}], "unknown role 'wizard'"),
        ([{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}], "not text"),
    ],
)
def test_malformed_conversations_say_why(value, why):
    with pytest.raises(chat.BadConversation, match=why):
        chat.turns(value)


texts = st.text(min_size=0, max_size=20)


@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=4), st.booleans())
def test_conversation_round_trips_through_every_format(exchanges, system):
    turns = [{"role": "system", "content": "S"}] if system else []
    for question, answer in exchanges:
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    rec = LineFormat("messages").chat_record(turns, "t", 3)
    assert json.loads(json.dumps(rec))["messages"] == turns  # every turn, unchanged
    pc = LineFormat("prompt-completion").chat_record(turns, "t", 3)
    assert pc["prompt"] + pc["completion"] == turns
    alpaca = LineFormat("alpaca").chat_record(turns, "t", 3)
    assert alpaca["output"] == exchanges[-1][1] and alpaca["instruction"] == exchanges[-1][0]
    assert [list(p) for p in exchanges[:-1]] == alpaca.get("history", []) and ("system" in alpaca) == system


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    return {
        form: write_parquet(make_chat_rows(form=form), root / f"{form}.parquet")
        for form in ("messages", "conversations")
    }


@pytest.mark.parametrize("form", ["messages", "conversations"])
def test_chat_rows_end_to_end(chat_data, form, tmp_path):
    data = chat_data[form]
    emb, tasks, samples, mix = tmp_path / "emb", tmp_path / "t.json", tmp_path / "s.parquet", tmp_path / "m.jsonl"
    r = invoke("embed", data, "--messages-column", form, "--task-column", "source", "--out", emb)
    assert r.exit_code == 0, r.output
    meta = json.loads((emb / artifacts.META).read_text())
    assert meta["columns"]["messages"] == form and meta["columns"]["template"] is None and meta["text"] == "prompt"
    assert invoke("select-tasks", emb, "-m", "3", "-n", "10", "--out", tasks).exit_code == 0
    assert invoke("select-samples", emb, tasks, "--out", samples).exit_code == 0
    r = invoke("export", samples, "--out", mix, "--format", "messages", "--keep-columns", "id,source")
    assert r.exit_code == 0, r.output
    source = {row["id"]: row for row in pq.read_table(data).to_pylist()}
    lines = [json.loads(x) for x in mix.read_text().splitlines()]
    assert len(lines) == 10 and len({x["id"] for x in lines}) == 10
    for line in lines:
        assert (
            line["messages"] == chat.turns(source[line["id"]][form]) and line["source"] == source[line["id"]]["source"]
        )
    assert invoke("verify", mix).exit_code == 0
    tampered = lines[0] | {"messages": lines[0]["messages"][:-1] + [{"role": "assistant", "content": "changed"}]}
    mix.write_text("\n".join(json.dumps(x) for x in [tampered, *lines[1:]]) + "\n")
    r = invoke("verify", mix, "--dataset", data)
    assert r.exit_code == 1 and "line 1" in r.output and "messages differs" in r.output
    # The spec's reference semantics on the same vectors: tasks from `source`, one group per task.
    doc = json.loads(tasks.read_text())
    ref_tasks, ref_budgets, ref_rows = reference_mixture(emb, 3, 10)
    assert [t["task"] for t in doc["tasks"]] == ref_tasks and [t["budget"] for t in doc["tasks"]] == ref_budgets
    assert set(pq.read_table(samples).column("row").to_pylist()) == ref_rows


def test_formats_that_cannot_hold_a_conversation_are_refused(chat_data, tmp_path):
    emb, tasks, samples = tmp_path / "emb", tmp_path / "t.json", tmp_path / "s.parquet"
    assert invoke("embed", chat_data["messages"], "--messages-column", "messages", "--task-column", "source",
                  "--text", "last-user", "--out", emb).exit_code == 0  # fmt: skip
    assert invoke("select-tasks", emb, "-m", "4", "-n", "24", "--out", tasks).exit_code == 0
    assert invoke("select-samples", emb, tasks, "--out", samples).exit_code == 0
    r = invoke("export", samples, "--out", tmp_path / "m.jsonl")  # prompt-response: one exchange only
    assert r.exit_code == 1 and "prompt-response holds one user turn and one answer" in r.output
    assert not (tmp_path / "m.jsonl").exists()
    r = invoke("export", samples, "--out", tmp_path / "m.jsonl", "--format", "messages", "--system", "S")
    assert r.exit_code == 2 and "chat rows keep their own system turns" in r.output
    r = invoke("export", samples, "--out", tmp_path / "pc.jsonl", "--format", "prompt-completion")
    assert r.exit_code == 0, r.output
    assert invoke("verify", tmp_path / "pc.jsonl").exit_code == 0


def test_bad_rows_error_names_the_row_or_are_skipped_and_counted(tmp_path):
    rows = make_chat_rows(per_source=3)
    rows[4]["messages"] = [{"role": "user", "content": "no answer"}]
    data = write_parquet(rows, tmp_path / "bad.parquet")
    args = ["embed", data, "--messages-column", "messages", "--task-column", "source"]
    r = invoke(*args, "--out", tmp_path / "a")
    assert r.exit_code == 1 and "row 4 of column 'messages' is not a conversation: it has no assistant turn" in r.output
    assert not (tmp_path / "a").exists()
    r = invoke(*args, "--bad-rows", "skip", "--out", tmp_path / "b")
    assert r.exit_code == 0 and "1 of 12 rows are not conversations and were skipped (first: row 4)" in r.output
    meta = json.loads((tmp_path / "b" / artifacts.META).read_text())
    assert meta["skipped_rows"] == 1 and meta["rows"] == 11
    kept = pq.read_table(tmp_path / "b" / artifacts.ROWS).column("row").to_pylist()
    assert kept == [i for i in range(12) if i != 4]


def test_nested_task_field_and_chat_options_on_plain_rows(tmp_path, tiny_dataset):
    rows = make_chat_rows(per_source=2)
    for row in rows:
        row["label"] = {"ability": row.pop("source"), "lang": "en"}
    data = write_parquet(rows, tmp_path / "nested.parquet")
    out = tmp_path / "emb"
    r = invoke("embed", data, "--messages-column", "messages", "--task-column", "label.ability", "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(set(pq.read_table(out / artifacts.ROWS).column("task").to_pylist())) == sorted(
        {"math", "cooking", "travel", "code"}
    )
    r = invoke("embed", tiny_dataset, "--system-turns", "drop", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "--system-turns" in r.output and "--messages-column" in r.output
    r = invoke("embed", data, "--messages-column", "messages", "--task-column", "label.ability",
               "--template-column", "missing", "--out", tmp_path / "y")  # fmt: skip
    assert r.exit_code == 1 and "column 'missing' (--template-column) not in the dataset" in r.output


def test_two_files_into_one_mixture(tmp_path):
    """Tulu-style rows split across two files: every line traces back to its own file and row."""
    rows = make_chat_rows(per_source=5)
    a = write_parquet(rows[:9], tmp_path / "a.parquet")
    b = write_parquet(rows[9:], tmp_path / "b.parquet")
    emb, tasks, samples, mix = tmp_path / "emb", tmp_path / "t.json", tmp_path / "s.parquet", tmp_path / "m.jsonl"
    r = invoke("embed", a, b, "--messages-column", "messages", "--task-column", "source", "--out", emb)
    assert r.exit_code == 0, r.output
    meta = json.loads((emb / artifacts.META).read_text())
    assert [s["num_rows"] for s in meta["dataset"]["sources"]] == [9, 11]
    assert all(len(s["sha256"]) == 64 for s in meta["dataset"]["sources"])
    table = pq.read_table(emb / artifacts.ROWS)
    assert table.column("dataset").to_pylist() == [0] * 9 + [1] * 11 and table.column("row").to_pylist() == list(
        range(20)
    )
    assert invoke("select-tasks", emb, "-m", "4", "-n", "12", "--out", tasks).exit_code == 0
    assert invoke("select-samples", emb, tasks, "--out", samples).exit_code == 0
    r = invoke("export", samples, "--out", mix, "--format", "messages", "--keep-columns", "id,source")
    assert r.exit_code == 0, r.output
    by_id = {row["id"]: row for row in rows}
    lines = [json.loads(x) for x in mix.read_text().splitlines()]
    assert len(lines) == 12 and len({x["id"] for x in lines}) == 12
    assert all(x["messages"] == by_id[x["id"]]["messages"] for x in lines)
    manifest = json.loads((tmp_path / "m.manifest.json").read_text())
    assert all(by_id[x["id"]] == rows[r] for x, r in zip(lines, manifest["rows"]))  # global row = file order
    assert invoke("verify", mix).exit_code == 0
    (tmp_path / "b.parquet").write_bytes((tmp_path / "a.parquet").read_bytes())  # b replaced by other rows
    r = invoke("verify", mix)
    assert r.exit_code == 1 and "belong together" in r.output


def test_task_from_dataset_and_mismatched_columns(tmp_path, tiny_dataset):
    rows = make_chat_rows(per_source=3)
    a = write_parquet(rows[:6], tmp_path / "alpha.parquet")
    b = write_parquet(rows[6:], tmp_path / "beta.parquet")
    emb = tmp_path / "emb"
    r = invoke("embed", a, b, "--messages-column", "messages", "--task-from", "dataset", "--out", emb)
    assert r.exit_code == 0, r.output
    assert pq.read_table(emb / artifacts.ROWS).column("task").to_pylist() == ["alpha"] * 6 + ["beta"] * 6
    tasks, samples, mix = tmp_path / "t.json", tmp_path / "s.parquet", tmp_path / "m.jsonl"
    assert invoke("select-tasks", emb, "-m", "2", "-n", "5", "--out", tasks).exit_code == 0
    assert invoke("select-samples", emb, tasks, "--out", samples).exit_code == 0
    assert invoke("export", samples, "--out", mix, "--format", "messages").exit_code == 0
    assert invoke("verify", mix).exit_code == 0
    r = invoke(
        "embed", a, tiny_dataset, "--messages-column", "messages", "--task-from", "dataset", "--out", tmp_path / "x"
    )
    assert r.exit_code == 1 and "need the same columns" in r.output
    r = invoke(
        "embed", a, "--name", "cfg", "--messages-column", "messages", "--task-from", "dataset", "--out", tmp_path / "y"
    )
    assert r.exit_code == 2 and "--name and --revision apply to hub datasets" in r.output


def test_a_recipe_mixes_a_list_of_datasets(tmp_path):
    rows = make_chat_rows(per_source=4)
    files = [write_parquet(rows[:8], tmp_path / "a.parquet"), write_parquet(rows[8:], tmp_path / "b.parquet")]
    recipe = tmp_path / "chat.yaml"
    recipe.write_text(
        json.dumps(
            {
                "dataset": files,
                "out": str(tmp_path / "run"),
                "embed": {"messages_column": "messages", "task_column": "source", "text": "last-user"},
                "select_tasks": {"num_tasks": 3, "budget": 6},
                "export": {"format": "prompt-completion", "keep_columns": ["id"]},
            }
        )
    )
    r = invoke("run", recipe)
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in (tmp_path / "run" / "mixture.jsonl").read_text().splitlines()]
    by_id = {row["id"]: row for row in rows}
    assert len(lines) == 6
    assert all(x["prompt"] + x["completion"] == by_id[x["id"]]["messages"] for x in lines)
    r = invoke("run", recipe, "--set", "dataset=7")
    assert r.exit_code == 2 and "'dataset' must be a string or a list of strings" in r.output


def test_recipe_entries_set_their_own_columns_split_and_task(tmp_path):
    """A `dataset:` list whose entries rename their own conversation column and take their task from their name."""
    rows = make_chat_rows(per_source=4)
    a = write_parquet(rows[:8], tmp_path / "tulu.parquet")
    other = [{"id": r["id"], "source": r["source"], "dialog": r["messages"]} for r in rows[8:]]
    b = write_parquet(other, tmp_path / "extra.parquet")
    recipe = tmp_path / "mix.yaml"
    entries = [a, {"path": b, "split": "train", "columns": {"messages_column": "dialog"}, "task_from": "dataset"}]
    recipe.write_text(
        json.dumps(
            {
                "dataset": entries,
                "out": str(tmp_path / "run"),
                "embed": {"messages_column": "messages", "task_column": "source"},
                "select_tasks": {"num_tasks": 3, "budget": 8},
                "export": {"format": "messages", "keep_columns": ["id", "source"]},
            }
        )
    )
    r = invoke("run", recipe)
    assert r.exit_code == 0, r.output
    tasks = pq.read_table(tmp_path / "run" / "embeddings" / artifacts.ROWS).column("task").to_pylist()
    assert tasks[8:] == ["extra"] * 8 and tasks[:8] == [row["source"] for row in rows[:8]]
    meta = json.loads((tmp_path / "run" / "embeddings" / artifacts.META).read_text())
    assert meta["dataset"]["sources"][1]["rename"] == {"dialog": "messages"}
    by_id = {row["id"]: row for row in rows}
    lines = [json.loads(x) for x in (tmp_path / "run" / "mixture.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(x["messages"] == by_id[x["id"]]["messages"] for x in lines)
    assert invoke("verify", tmp_path / "run" / "mixture.jsonl").exit_code == 0
    bad = json.loads(recipe.read_text()) | {"dataset": [a, {"path": b, "colums": {}}]}
    recipe.write_text(json.dumps(bad))
    r = invoke("run", recipe)
    assert r.exit_code == 2 and "unknown key 'colums'" in r.output
