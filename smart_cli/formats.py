"""Line formats of a mixture, as trainers read them, and (gzip) JSONL files written deterministically.

| format | one line |
| --- | --- |
| ``prompt-response`` | ``{"prompt", "response", "task", "row"}`` (the default; provenance fields included) |
| ``messages`` | ``{"messages": [{"role": "system"}?, {"role": "user"}, {"role": "assistant"}]}`` |
| ``prompt-completion`` | ``{"prompt", "completion"}`` |
| ``alpaca`` | ``{"instruction", "input": "", "output"}`` |

The trainer formats carry only the trainer's fields unless ``provenance_fields`` adds ``task``
and ``row``; the manifest beside the mixture always records every line's source row.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterator
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
        text = json.dumps(self.record(prompt, response, task, row), ensure_ascii=False, default=str)
        # Valid raw in JSON, but str.splitlines() and some JSONL readers break lines there.
        return text.translate(_LINE_BREAKS) + "\n"

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
