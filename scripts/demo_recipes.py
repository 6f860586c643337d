"""The interpreter behind scripts/make_demo_data.py's recipes (scripts/demo_data/recipes.yaml).

A recipe says how one instance of a task family is drawn: steps that fill variables from
templates such as "{cap(a1)} was {pick(ADVERBS)} {pick(adj)}.", whose {expressions} are a
small part of Python (recipes.yaml's header lists what is allowed). Expressions are parsed
with the ast module and walked here, left to right like Python, so every random draw happens
in the order the recipe is written and a seed always gives the same instances. Nothing is
passed to eval: names resolve only to the recipe's variables, the word lists, the snippets,
the random draws and the helpers below.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import operator
import re
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}
_OPS |= {ast.Mod: operator.mod, ast.BitOr: operator.or_, ast.USub: operator.neg, ast.Not: operator.not_}
_OPS |= {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt}
_OPS |= {ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_OPS |= {ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def evaluate(node: ast.AST, env: ChainMap) -> Any:
    """A recipe expression's value; like Python, parts are evaluated left to right."""
    rule = _RULES.get(type(node))
    if rule is None:
        raise ValueError(f"recipe expressions cannot use {type(node).__name__}: {ast.unparse(node)}")
    return rule(node, env)


@dataclass(frozen=True)
class EnvCall:
    """A helper that is also handed the caller's variables (fill and the snippets)."""

    fn: Callable


def _call(node: ast.Call, env: ChainMap) -> Any:
    fn = evaluate(node.func, env)
    args = [evaluate(a, env) for a in node.args]
    kwargs = {str(k.arg): evaluate(k.value, env) for k in node.keywords}
    return fn.fn(env, *args, **kwargs) if isinstance(fn, EnvCall) else fn(*args, **kwargs)


def _attribute(node: ast.Attribute, env: ChainMap) -> Any:
    """d.key reads a mapping's key; other objects only expose their public attributes."""
    value = evaluate(node.value, env)
    if node.attr.startswith("_"):
        raise ValueError(f"recipe expressions cannot read private attributes: {ast.unparse(node)}")
    return value[node.attr] if isinstance(value, dict) else getattr(value, node.attr)


def _compare(node: ast.Compare, env: ChainMap) -> bool:
    left = evaluate(node.left, env)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = evaluate(right_node, env)
        if not _OPS[type(op)](left, right):
            return False
        left = right
    return True


def _list_comp(node: ast.ListComp, env: ChainMap) -> list:
    """[elt for name, ... in iterable if cond ...], with a single for."""
    (loop,) = node.generators
    targets = loop.target.elts if isinstance(loop.target, ast.Tuple) else [loop.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    out = []
    for item in evaluate(loop.iter, env):
        scope = env.new_child(dict(zip(names, item if len(names) > 1 else [item], strict=True)))
        if all(evaluate(cond, scope) for cond in loop.ifs):
            out.append(evaluate(node.elt, scope))
    return out


def _slice(node: ast.Slice, env: ChainMap) -> slice:
    lower, upper, step = (p and evaluate(p, env) for p in (node.lower, node.upper, node.step))
    return slice(lower, upper, step)


_RULES: dict[type, Callable[[Any, ChainMap], Any]] = {
    ast.Constant: lambda node, env: node.value,
    ast.Name: lambda node, env: env[node.id],
    ast.Attribute: _attribute,
    ast.Subscript: lambda node, env: evaluate(node.value, env)[evaluate(node.slice, env)],
    ast.Slice: _slice,
    ast.BinOp: lambda node, env: _OPS[type(node.op)](evaluate(node.left, env), evaluate(node.right, env)),
    ast.UnaryOp: lambda node, env: _OPS[type(node.op)](evaluate(node.operand, env)),
    ast.Compare: _compare,
    ast.IfExp: lambda node, env: evaluate(node.body if evaluate(node.test, env) else node.orelse, env),
    ast.Call: _call,
    ast.List: lambda node, env: [evaluate(e, env) for e in node.elts],
    ast.Tuple: lambda node, env: tuple(evaluate(e, env) for e in node.elts),
    ast.ListComp: _list_comp,
}


@functools.cache
def _parse(template: str) -> tuple:
    """A template's literal text (even positions) and parsed {expressions} (odd positions)."""
    parts = _PLACEHOLDER.split(template)
    return tuple(p if i % 2 == 0 else ast.parse(p.strip(), mode="eval").body for i, p in enumerate(parts))


def expand(value: Any, env: ChainMap) -> Any:
    """Fills a template, or each template in a list or mapping; a lone {expression} keeps its type."""
    if isinstance(value, list):
        return [expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, env) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    parts = _parse(value)
    if len(parts) == 3 and parts[0] == parts[2] == "":
        return evaluate(parts[1], env)
    return "".join(p if i % 2 == 0 else str(evaluate(p, env)) for i, p in enumerate(parts))


def run_steps(steps: list[dict], env: ChainMap) -> None:
    """Runs recipe steps in order (see recipes.yaml), storing results in env's first map."""
    for step in steps:
        if "switch" in step:
            run_steps(step["cases"][expand(step["switch"], env)], env)
        elif "while" in step:
            while expand(step["while"], env):
                run_steps(step["do"], env)
        else:
            ((names, value),) = step.items()
            result, keys = expand(value, env), [n.strip() for n in names.split(",")]
            env.maps[0].update(zip(keys, result, strict=True) if len(keys) > 1 else {keys[0]: result})


def _snippet(spec: str | list) -> EnvCall:
    """A snippet runs in a scope of its own; a template one is redrawn while it equals `avoid`."""

    def call(env: ChainMap, avoid: Any = None) -> Any:
        scope = ChainMap({}, env.maps[-1])
        if isinstance(spec, list):
            run_steps(spec, scope)
            return scope.maps[0]
        while (value := expand(spec, scope)) == avoid:
            pass
        return value

    return EnvCall(call)


def arrange(orders: list[list[str]], **slots: Any) -> list[str]:
    """One clause per language from parallel slots, in each language's word order; None slots are left out."""
    return [" ".join(slots[s][i] for s in order if slots[s] is not None) for i, order in enumerate(orders)]


HELPERS: dict[str, Any] = dict(
    cap=lambda s: s[:1].upper() + s[1:],
    low=lambda s: s[:1].lower() + s[1:],
    indef=lambda word: ("an " if word[:1].lower() in "aeiou" else "a ") + word,  # with its indefinite article
    dialog_turns=lambda lines, speakers: "\n".join(f"{speakers[i % 2]}: {line}" for i, line in enumerate(lines)),
    date=dt.date,
    days=lambda n: dt.timedelta(days=n),
    mdy=lambda d: d.strftime("%m/%d/%Y"),
    arrange=arrange,
    fill=EnvCall(lambda env, text, **more: expand(text, env.new_child(more))),
)
HELPERS |= {f.__name__: f for f in (len, list, set, dict, sorted, min, max, str, zip, enumerate)}


class Recipes:
    """The recipes and snippets of recipes.yaml over the word lists of vocab.yaml."""

    def __init__(self, vocab: dict[str, Any], recipes: dict[str, Any]) -> None:
        self.recipes = recipes["recipes"]
        self.names = {**vocab, **HELPERS, **{name: _snippet(s) for name, s in recipes["snippets"].items()}}

    def scope(self, **draws: Any) -> dict[str, Any]:
        """The names a recipe sees: word lists, helpers, snippets and one generator's random draws."""
        return {**self.names, **draws}

    def draw(self, name: str, args: dict, scope: dict[str, Any]) -> tuple[dict[str, str], str, list | None]:
        """Runs a recipe with a task's args over its default params: (fields, target, options)."""
        spec = self.recipes[name]
        env = ChainMap({**spec.get("params", {}), **args}, scope)
        run_steps(spec["steps"], env)
        out = env.maps[0]
        return {f: str(out[f]) for f in spec["fields"]}, str(out["target"]), out.get("options")
