"""Chat-shaped rows: a list of turns in one column, as Tulu, SmolTalk, OpenHermes or Infinity-Instruct store them.

Two forms are read: ``{"role": ..., "content": ...}`` (the messages form) and ShareGPT's
``{"from": ..., "value": ...}``. Role names are normalised to ``system``, ``user`` and
``assistant`` (``human`` -> user, ``gpt`` -> assistant; others through a role map the user
gives, as ``bot=assistant,narrator=system``). A conversation is well formed when it is a
list of turns, every turn has a known role and text content, and it has an assistant turn.

Pure functions: values in, turns and text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smart_cli.errors import UsageError, param

ROLES = ("system", "user", "assistant")
#: Role names every source uses for the three roles.
ALIASES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant"}
#: What ``embed --text`` means for a chat row.
TEXT_MODES = ("prompt", "last-user", "user", "conversation")
SYSTEM_TURNS = ("keep", "drop")
BAD_ROWS = ("error", "skip")

Turn = dict[str, str]


class BadConversation(ValueError):
    """A row that is not a well-formed conversation; the message says why."""


def parse_role_map(text: str | None) -> dict[str, str]:
    """``"bot=assistant,narrator=system"`` -> ``{"bot": "assistant", "narrator": "system"}``."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, role = item.partition("=")
        if not sep or not name.strip() or role.strip() not in ROLES:
            raise ValueError(f"{item.strip()!r} is not NAME=ROLE with ROLE one of {', '.join(ROLES)}")
        mapping[name.strip().lower()] = role.strip()
    return mapping


def check_options(is_chat: bool, role_map: str | None, system_turns: str, bad_rows: str) -> None:
    """Refuse chat options that are malformed, or given for rows that are not chat rows."""
    try:
        parse_role_map(role_map)
    except ValueError as exc:
        raise UsageError(f"{param('role_map')}: {exc}") from None
    if not is_chat and (role_map or system_turns != "keep" or bad_rows != "error"):
        raise UsageError(
            f"{param('role_map')}, {param('system_turns')} and {param('bad_rows')} apply to chat rows "
            f"({param('messages_column')})"
        )


def _role_and_text(turn: Any, number: int) -> tuple[Any, Any]:
    if not isinstance(turn, Mapping):
        raise BadConversation(f"turn {number} is not an object")
    if "role" in turn or "content" in turn:
        role, text = turn.get("role"), turn.get("content")
    else:
        role, text = turn.get("from"), turn.get("value")
    if role is None:
        raise BadConversation(f"turn {number} has no role ('role' or 'from')")
    if text is None:
        raise BadConversation(f"turn {number} has no content ('content' or 'value')")
    return role, text


def turns(value: Any, roles: Mapping[str, str] | None = None) -> list[Turn]:
    """The conversation in ``value`` as ``[{"role", "content"}]`` with normalised roles, or ``BadConversation``."""
    if not isinstance(value, list):
        raise BadConversation(f"not a list of turns but {type(value).__name__}")
    known = {**ALIASES, **(roles or {})}
    out: list[Turn] = []
    for number, turn in enumerate(value, 1):
        role, text = _role_and_text(turn, number)
        if not isinstance(text, str):
            raise BadConversation(f"turn {number}'s content is {type(text).__name__}, not text")
        normal = known.get(str(role).lower())
        if normal is None:
            raise BadConversation(f"turn {number} has the unknown role {role!r} (map it with --role-map)")
        out.append({"role": normal, "content": text})
    if not any(t["role"] == "assistant" for t in out):
        raise BadConversation("it has no assistant turn")
    return out


def split_last(conversation: list[Turn]) -> tuple[list[Turn], Turn]:
    """The turns before the last assistant turn, and that turn (the response)."""
    last = max(i for i, t in enumerate(conversation) if t["role"] == "assistant")
    return conversation[:last], conversation[last]


def _lines(conversation: Iterable[Turn]) -> str:
    return "\n".join(f"{t['role']}: {t['content']}" for t in conversation)


def text(conversation: list[Turn], mode: str, system: str = "keep") -> str:
    """What ``embed`` embeds for a chat row.

    ``prompt``: every turn before the last assistant turn; ``user``: every user turn;
    ``conversation``: every turn; each as ``role: content`` lines. ``last-user``: the content of
    the final user turn before the response, alone. ``system="drop"`` leaves system turns out.
    """
    before, _ = split_last(conversation)
    if system == "drop":
        before = [t for t in before if t["role"] != "system"]
        conversation = [t for t in conversation if t["role"] != "system"]
    if mode == "prompt":
        return _lines(before)
    if mode == "user":
        return _lines(t for t in conversation if t["role"] == "user")
    if mode == "conversation":
        return _lines(conversation)
    users = [t["content"] for t in before if t["role"] == "user"]
    return users[-1] if users else ""


def problems(values: Iterable[Any], roles: Mapping[str, str] | None, start: int = 0) -> list[tuple[int, str]]:
    """``(row, why)`` for every value that is not a well-formed conversation."""
    found = []
    for i, value in enumerate(values, start):
        try:
            turns(value, roles)
        except BadConversation as exc:
            found.append((i, str(exc)))
    return found
