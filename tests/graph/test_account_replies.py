"""The account insights parser's fast path for daily totals reads exactly what its checked path
reads, and refuses the same replies."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.graph.account_replies import _checked_totals, parse_account_reply
from harvester.graph.errors import MalformedReply

UNTIL = datetime(2026, 11, 30, tzinfo=UTC)
_ONE_LABEL = {"dimension_values": ["POST"], "value": 1}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
counts = st.integers(0, 10**6)
results = st.fixed_dictionaries(
    {"dimension_values": st.lists(st.sampled_from(["POST", "REEL"]), min_size=1, max_size=1)},
    optional={"value": counts},
)
breakdowns = st.fixed_dictionaries(
    {"dimension_keys": st.just(["media_product_type"]), "results": st.lists(results, max_size=3)}
)
# The usual shape of a daily total: what the fast path reads.
usual = st.fixed_dictionaries(
    # reels_skip_rate: a fractional metric, which the fast path leaves to the checked one.
    {"name": st.sampled_from(["likes", "reach", "reels_skip_rate"])},
    optional={
        "period": st.just("day"),
        "total_value": st.fixed_dictionaries(
            {}, optional={"value": counts, "breakdowns": st.lists(breakdowns, max_size=2)}
        ),
    },
)
# What may stand in one place of the usual shape instead (a string or two is also appended to
# one of its lists).
specials = st.sampled_from(
    [2**63, -(2**63) - 1, 2.0, 1.5, True, None, "3", 4, [], ["POST", "REEL"], [7], {}]
)
oddities = specials | specials | json_values


def _places(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) below `node`: where an oddity may go."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    out: list[tuple[Any, Any]] = []
    for key, value in items:
        out.append((node, key))
        if isinstance(value, dict | list):
            out += _places(value)
    return out


def _checked(entry: dict[str, Any], with_total: bool) -> list[Any]:
    return list(_checked_totals(entry["name"], "day", UNTIL, entry, with_total))


@settings(max_examples=500)
@given(usual, st.booleans(), st.data())
def test_a_daily_total_reads_as_its_checked_reading(
    entry: dict[str, Any], with_total: bool, data: st.DataObject
) -> None:
    entry = copy.deepcopy(entry)  # `st.just` hands out one list: not to be changed in place
    # The name and period are read before either path, the same way.
    places = [
        (node, key) for node, key in _places(entry) if node is not entry or key == "total_value"
    ]
    lists = [value for node, key in places if isinstance(value := node[key], list)]
    change = data.draw(st.sampled_from(["none", "replace", "append"]))
    if change == "replace" and places:
        node, key = data.draw(st.sampled_from(places))
        node[key] = data.draw(oddities)
    elif change == "append" and lists:
        data.draw(st.sampled_from(lists)).append(data.draw(st.sampled_from(["REEL", "age"])))
    skip = () if with_total else (entry["name"],)
    try:
        expected: list[Any] | None = _checked(entry, with_total)
    except MalformedReply:
        expected = None
    try:
        got: list[Any] | None = parse_account_reply(
            {"data": [entry]},
            "total",
            [entry["name"]],
            period="day",
            until=UNTIL,
            skip_totals=skip,
        )
    except MalformedReply:
        got = None
    assert got == expected


def test_a_usual_daily_total_is_its_total_then_one_row_per_result() -> None:
    entry = {
        "name": "likes",
        "period": "day",
        "total_value": {
            "value": 9,
            "breakdowns": [
                {
                    "dimension_keys": ["media_product_type"],
                    "results": [
                        {"dimension_values": ["POST"], "value": 4},
                        {"dimension_values": ["REEL"], "value": 5},
                    ],
                }
            ],
        },
    }
    got = parse_account_reply({"data": [entry]}, "total", ["likes"], period="day", until=UNTIL)
    assert got == [
        ("likes", "day", UNTIL, None, None, 9, None),
        ("likes", "day", UNTIL, "media_product_type", "POST", 4, None),
        ("likes", "day", UNTIL, "media_product_type", "REEL", 5, None),
    ]


@pytest.mark.parametrize(
    "total",
    [
        {"value": 2**63},
        {"value": True},
        {"value": 1, "breakdowns": [{"dimension_keys": ["a"], "results": [{"value": 1}]}]},
        {"value": 1, "breakdowns": [{"dimension_keys": ["a", "b"], "results": [_ONE_LABEL]}]},
        {"value": 1, "breakdowns": [{"dimension_keys": ["a"], "results": 4}]},
    ],
)
def test_an_odd_daily_total_is_malformed(total: dict[str, Any]) -> None:
    entry = {"name": "likes", "total_value": total}
    with pytest.raises(MalformedReply, match="likes"):
        parse_account_reply({"data": [entry]}, "total", ["likes"], period="day", until=UNTIL)
