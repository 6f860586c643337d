"""Line formats of a mixture, as trainers read them, and (gzip) JSONL files written deterministically.

| format | one line |
| --- | --- |
| ``prompt-response`` | ``{"prompt", "response", "task", "row"}`` (the default; provenance fields included) |
| ``messages`` | ``{"messages": [{"role": "system"}?, {"role": "user"}, {"role": "assistant"}]}`` |
| ``prompt-completion`` | ``{"prompt", "completion"}`` |
| ``alpaca`` | ``{"instruction", "input": "", "output"}`` |

The trainer formats carry only the trainer's fields unless ``provenance_fields`` adds ``task``
and ``row``; the manifest beside the mixture always records every line's source row.

Chat rows (a conversation per row) keep every turn: ``messages`` writes them all, unchanged;
``prompt-completion`` is TRL's conversational form (``prompt``: the turns before the last
assistant turn, ``completion``: that turn); ``alpaca`` puts earlier exchanges in LLaMA-Factory's
``history`` and a system turn in ``system``; ``prompt-response`` takes only a single exchange.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from smart_cli.errors import UsageError, param

FORMATS = ("prompt-response", "messages", "prompt-completion", "alpaca")
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


@dataclass(frozen=True)
class LineFormat:
    """How one mixture row becomes one JSON line."""

    name: str = "prompt-response"
    system: str | None = None
    provenance_fields: bool | None = None  # None: on for prompt-response, off for the trainer formats

    def validate(self) -> LineFormat:
        if self.name not in FORMATS:
            raise UsageError(f"unknown {param('format')} {self.name!r}; choose from {', '.join(FORMATS)}")
        if self.system is not None and self.name != "messages":
            raise UsageError(f"{param('system')} applies to {param('format')} messages only")
        return self

    @property
    def with_provenance(self) -> bool:
        return self.name == "prompt-response" if self.provenance_fields is None else self.provenance_fields

    def record(self, prompt, response, task: str, row: int) -> dict:
        if self.name == "prompt-response":
            rec: dict = {"prompt": prompt, "response": response}
        elif self.name == "messages":
            messages = [{"role": "system", "content": self.system}] if self.system is not None else []
            messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
            rec = {"messages": messages}
        elif self.name == "prompt-completion":
            rec = {"prompt": prompt, "completion": response}
        else:
            rec = {"instruction": prompt, "input": "", "output": response}
        if self.with_provenance:
            rec.update(task=task, row=int(row))
        return rec

    def line(self, prompt, response, task: str, row: int) -> str:
        return dump(self.record(prompt, response, task, row))

    def chat_record(self, turns: list[dict], task: str, row: int) -> dict:
        """The line of a chat row, its turns ``[{"role", "content"}]`` normalised; ``ValueError`` where
        the format cannot hold the conversation."""
        from smart_cli import chat

        if self.name != "messages" and turns[-1]["role"] != "assistant":
            raise ValueError(f"it ends with a {turns[-1]['role']} turn after the last answer (use --format messages)")
        if self.name == "messages":
            rec: dict = {"messages": turns}
        elif self.name == "prompt-completion":
            before, last = chat.split_last(turns)
            rec = {"prompt": before, "completion": [last]}
        elif self.name == "alpaca":
            rec = _alpaca(turns)
        else:
            roles = [t["role"] for t in turns]
            if roles != ["user", "assistant"]:
                raise ValueError(
                    f"it has the turns {'/'.join(roles)}: prompt-response holds one user turn and one answer "
                    "(use --format messages to keep every turn)"
                )
            rec = {"prompt": turns[0]["content"], "response": turns[1]["content"]}
        if self.with_provenance:
            rec.update(task=task, row=int(row))
        return rec

    def parse(self, obj) -> tuple:
        """``(prompt, response, task or None, row or None)`` of a parsed line; ``ValueError`` says why not."""
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        try:
            if self.name == "prompt-response":
                prompt, response = obj["prompt"], obj["response"]
            elif self.name == "messages":
                messages = obj["messages"]
                if self.system is not None:
                    if not messages or messages[0] != {"role": "system", "content": self.system}:
                        raise ValueError("the system message differs from the manifest's")
                    messages = messages[1:]
                roles = [m.get("role") for m in messages] if isinstance(messages, list) else None
                if roles != ["user", "assistant"]:
                    raise ValueError(f"messages have roles {roles}, not user then assistant")
                prompt, response = messages[0]["content"], messages[1]["content"]
            elif self.name == "prompt-completion":
                prompt, response = obj["prompt"], obj["completion"]
            else:
                if obj["input"] != "":
                    raise ValueError("alpaca 'input' is not empty")
                prompt, response = obj["instruction"], obj["output"]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a {self.name} line (missing {exc})") from None
        return prompt, response, obj.get("task"), obj.get("row")


def source_record(fmt: LineFormat, values: dict, columns: dict, task: str, row: int, keep=(), roles=None) -> dict:
    """The line ``fmt`` makes of one source row (``values``: its columns), with the ``keep`` columns.

    ``columns``: what the samples file records (``prompt``, ``response`` or ``messages``);
    ``roles``: extra role names of chat rows. ``ValueError`` where the format cannot hold the row.
    """
    from smart_cli import chat

    if columns.get("messages"):
        rec = fmt.chat_record(chat.turns(values[columns["messages"]], roles), task, row)
    else:
        prompt, response = values[columns.get("prompt", "inputs")], values[columns.get("response", "targets")]
        rec = fmt.record(prompt, response, task, row)
    return {**rec, **{c: values[c] for c in keep}}


def source_fields(doc: dict, keep: Sequence[str] = ()) -> tuple[list[str], dict]:
    """What the lines of a samples file or manifest ``doc`` are made from: the source columns to read
    (the text columns embed read, then ``keep``), and the extra role names of chat rows."""
    from smart_cli import chat

    cols = doc.get("columns") or {}
    text = (
        [cols["messages"]] if cols.get("messages") else [cols.get("prompt", "inputs"), cols.get("response", "targets")]
    )
    roles = chat.parse_role_map(((doc.get("embedding") or {}).get("chat") or {}).get("role_map"))
    return list(dict.fromkeys([*text, *keep])), roles


def _alpaca(turns: list[dict]) -> dict:
    """LLaMA-Factory's alpaca form: system, earlier (user, assistant) pairs as history, the last exchange."""
    from smart_cli import chat

    before, last = chat.split_last(turns)
    system = [t["content"] for t in before if t["role"] == "system"]
    rest = [t for t in before if t["role"] != "system"]
    roles = [t["role"] for t in rest]
    if len(system) > 1 or not rest or roles != ["user", "assistant"] * (len(rest) // 2) + ["user"]:
        raise ValueError(f"its turns {'/'.join(t['role'] for t in turns)} do not alternate user/assistant for alpaca")
    history = [[rest[i]["content"], rest[i + 1]["content"]] for i in range(0, len(rest) - 1, 2)]
    rec = {"instruction": rest[-1]["content"], "input": "", "output": last["content"]}
    return {**rec, **({"system": system[0]} if system else {}), **({"history": history} if history else {})}


def dump(record: dict) -> str:
    """One JSONL line of ``record``."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    # Valid raw in JSON, but str.splitlines() and some JSONL readers break lines there.
    return text.translate(_LINE_BREAKS) + "\n"


def is_gzip(path: str | Path) -> bool:
    return str(path).endswith(".gz")


@contextlib.contextmanager
def open_text(path: str | Path, mode: str = "r", gzipped: bool | None = None) -> Iterator[IO[str]]:
    """A UTF-8 text handle on ``path``, through gzip when ``gzipped`` (default: the name ends in .gz).

    Written gzip is deterministic: no file name and mtime 0 in the header, so equal lines give
    equal bytes.
    """
    gzipped = is_gzip(path) if gzipped is None else gzipped
    if not gzipped:
        with open(path, mode, encoding="utf-8", newline="\n" if mode == "w" else None) as fh:
            yield fh
        return
    with open(path, mode + "b") as raw:
        gz = gzip.GzipFile(filename="", mode=mode + "b", fileobj=raw, mtime=0)
        with gz, io.TextIOWrapper(gz, encoding="utf-8", newline="\n" if mode == "w" else None) as fh:
            yield fh
