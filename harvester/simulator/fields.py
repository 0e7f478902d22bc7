"""The `fields=` mini-language: `id,children{id,media_type},insights.metric(reach,saved)`.

Parsed specs are cached by their text: clients repeat the same `fields` on every page, so parsing
once keeps the per-request cost of field selection at a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from harvester.simulator import replies

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class Field(NamedTuple):
    name: str
    modifiers: tuple[tuple[str, str], ...]
    sub: tuple[Field, ...] | None

    def modifier(self, key: str) -> str | None:
        for k, v in self.modifiers:
            if k == key:
                return v
        return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def fail(self, expected: str) -> replies.GraphError:
        got = self.text[self.i] if self.i < len(self.text) else "end of string"
        return replies.bad_param(
            f'Syntax error "Expected {expected} instead of "{got}"." '
            f"at character {self.i}: {self.text}"
        )

    def name(self) -> str:
        start = self.i
        while self.i < len(self.text) and self.text[self.i].lower() in _NAME_CHARS:
            self.i += 1
        if self.i == start:
            raise self.fail("field name")
        return self.text[start : self.i]

    def field_list(self, depth: int) -> tuple[Field, ...]:
        if depth > 4:
            raise self.fail("shallower nesting")
        out = [self.field(depth)]
        while self.i < len(self.text) and self.text[self.i] == ",":
            self.i += 1
            out.append(self.field(depth))
        return tuple(out)

    def field(self, depth: int) -> Field:
        name = self.name()
        mods: list[tuple[str, str]] = []
        sub: tuple[Field, ...] | None = None
        while self.i < len(self.text) and self.text[self.i] in ".{":
            if self.text[self.i] == "{":
                if sub is not None:
                    raise self.fail("end of field")
                self.i += 1
                sub = self.field_list(depth + 1)
                if self.i >= len(self.text) or self.text[self.i] != "}":
                    raise self.fail('"}"')
                self.i += 1
                continue
            self.i += 1
            key = self.name()
            if self.i >= len(self.text) or self.text[self.i] != "(":
                raise self.fail('"("')
            close = self.text.find(")", self.i)
            if close < 0:
                raise self.fail('")"')
            mods.append((key, self.text[self.i + 1 : close]))
            self.i = close + 1
        return Field(name, tuple(mods), sub)


@lru_cache(maxsize=2048)
def parse_fields(text: str) -> tuple[Field, ...]:
    """The field specs in `text`; raises a code-100 GraphError on a syntax error."""
    text = text.replace(" ", "")
    if not text:
        return ()
    parser = _Parser(text)
    specs = parser.field_list(0)
    if parser.i != len(text):
        raise parser.fail("end of string")
    return specs


def check_known(specs: tuple[Field, ...], allowed: frozenset[str], node_type: str) -> None:
    for spec in specs:
        if spec.name not in allowed:
            raise replies.nonexisting_field(spec.name, node_type)


def render(specs: Iterable[Field], value: Callable[[Field], Any], node_id: str) -> dict[str, Any]:
    """A node as Meta answers `fields=`: each asked field it has (a field without a value is
    left out), and always its id."""
    out: dict[str, Any] = {}
    for spec in specs:
        found = value(spec)
        if found is not None:
            out[spec.name] = found
    out.setdefault("id", node_id)
    return out
