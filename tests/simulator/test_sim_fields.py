"""The `fields=` parser: nesting, modifiers, and code-100 errors (not exceptions) on bad syntax."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.simulator.fields import Field, parse_fields
from harvester.simulator.replies import GraphError


def test_nested_fields_and_modifiers() -> None:
    specs = parse_fields("id,children{id,media_type},insights.metric(reach,saved).period(lifetime)")
    assert [s.name for s in specs] == ["id", "children", "insights"]
    children = specs[1]
    assert children.sub == (Field("id", (), None), Field("media_type", (), None))
    insights = specs[2]
    assert insights.modifier("metric") == "reach,saved"
    assert insights.modifier("period") == "lifetime"
    assert insights.modifier("breakdown") is None


def test_modifier_then_sub_fields() -> None:
    [media] = parse_fields("media.limit(3){id,timestamp}")
    assert media.modifier("limit") == "3"
    assert media.sub is not None and [f.name for f in media.sub] == ["id", "timestamp"]


def test_empty_text_means_no_fields() -> None:
    assert parse_fields("") == ()


@pytest.mark.parametrize(
    "bad", ["id,", ",id", "id{", "id{}", "a.b", "a.b(", "id}}", "x{y}{z}", "!"]
)
def test_syntax_errors_are_code_100(bad: str) -> None:
    with pytest.raises(GraphError) as err:
        parse_fields(bad)
    assert err.value.code == 100
    assert err.value.error["message"].startswith("(#100) Syntax error")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@st.composite
def field_text(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        text = draw(names)
        if draw(st.booleans()):
            text += f".{draw(names)}({draw(st.text(alphabet='abc,_0123', max_size=10))})"
        if depth < 2 and draw(st.booleans()):
            text += "{" + draw(field_text(depth + 1)) + "}"
        parts.append(text)
    return ",".join(parts)


@given(field_text())
def test_well_formed_text_always_parses(text: str) -> None:
    assert len(parse_fields(text)) == text.count(",") - _inner_commas(text) + 1


def _inner_commas(text: str) -> int:
    depth, count = 0, 0
    for ch in text:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == "," and depth:
            count += 1
    return count


@given(st.text(max_size=40))
def test_any_text_parses_or_fails_with_code_100(text: str) -> None:
    try:
        parse_fields(text)
    except GraphError as err:
        assert err.code == 100
