"""Usage headers: percentages and regain times, whatever shape the headers arrive in."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from harvester.graph.usage import Usage, header, parse_usage

APP = '{"call_count":28,"total_time":25,"total_cputime":25}'
BUC = (
    '{"17841400000000001":[{"type":"instagram","call_count":12,"total_cputime":3,'
    '"total_time":4,"estimated_time_to_regain_access":0}]}'
)


def test_parses_both_headers() -> None:
    usage = parse_usage({"X-App-Usage": APP, "X-Business-Use-Case-Usage": BUC})
    assert usage == Usage(
        app_pct=28.0,
        account_pct={"17841400000000001": 12.0},
        regain_seconds={"17841400000000001": 0.0},
    )


def test_header_names_are_case_insensitive_in_plain_dicts_and_multidicts() -> None:
    lower = parse_usage({"x-app-usage": APP, "x-business-use-case-usage": BUC})
    upper = parse_usage({"X-APP-USAGE": APP, "X-BUSINESS-USE-CASE-USAGE": BUC})
    proxy = CIMultiDictProxy(CIMultiDict({"X-App-Usage": APP, "X-Business-Use-Case-Usage": BUC}))
    assert lower == upper == parse_usage(proxy)
    assert lower.app_pct == 28.0


def test_takes_the_highest_percentage_and_the_longest_regain() -> None:
    app = '{"call_count":5,"total_time":97.5,"total_cputime":40}'
    buc = orjson.dumps(
        {
            "1": [
                {"type": "instagram", "call_count": 50, "total_cputime": 99, "total_time": 1},
                {"type": "instagram", "call_count": 10, "estimated_time_to_regain_access": 7},
            ],
            "2": [{"type": "instagram", "call_count": 3, "estimated_time_to_regain_access": 2}],
        }
    ).decode()
    usage = parse_usage({"X-App-Usage": app, "X-Business-Use-Case-Usage": buc}, minute_seconds=0.5)
    assert usage == Usage(
        app_pct=97.5, account_pct={"1": 99.0, "2": 3.0}, regain_seconds={"1": 3.5, "2": 1.0}
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-App-Usage": ""},
        {"X-App-Usage": "{not json"},
        {"X-App-Usage": "[28, 25]"},
        {"X-App-Usage": '{"call_count":"28"}'},
        {"X-App-Usage": '{"call_count":true}'},
        {"X-App-Usage": '{"call_count":-4}'},
        {"X-Business-Use-Case-Usage": '{"1": {"call_count": 5}}'},
        {"X-Business-Use-Case-Usage": '{"1": [5, "x", null]}'},
        {"X-Business-Use-Case-Usage": "null"},
        {"X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": "soon"}]}'},
    ],
)
def test_malformed_headers_are_ignored(headers: dict[str, str]) -> None:
    assert parse_usage(headers) == Usage(app_pct=None, account_pct={}, regain_seconds={})


def test_one_bad_header_does_not_hide_the_other() -> None:
    usage = parse_usage({"X-App-Usage": "garbage", "X-Business-Use-Case-Usage": BUC})
    assert usage.app_pct is None
    assert usage.account_pct == {"17841400000000001": 12.0}


class Hostile(dict[str, str]):
    """A mapping whose lookups fail, as a misbehaving header container might."""

    def get(self, key: Any, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_header_lookup_never_raises() -> None:
    assert header(Hostile(), "X-App-Usage") is None
    assert parse_usage(Hostile()) == Usage(app_pct=None, account_pct={}, regain_seconds={})


NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=4), st.none()
)
ENTRY = st.dictionaries(
    st.sampled_from(
        ["type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"]
    ),
    NUMBERS,
)
BUC_VALUES = st.dictionaries(
    st.text(max_size=6), st.one_of(st.lists(st.one_of(ENTRY, NUMBERS), max_size=3), NUMBERS)
)
VALUES = st.one_of(
    st.text(max_size=60),
    ENTRY.map(lambda v: orjson.dumps(v).decode()),
    BUC_VALUES.map(lambda v: orjson.dumps(v).decode()),
)
NAMES = st.sampled_from(["X-App-Usage", "x-app-usage", "X-Business-Use-Case-Usage", "Other"])


@settings(max_examples=300)
@given(headers=st.dictionaries(NAMES, VALUES, max_size=3), minute=st.floats(0, 1e6))
def test_parse_usage_is_total(headers: dict[str, str], minute: float) -> None:
    usage = parse_usage(headers, minute_seconds=minute)
    assert usage.app_pct is None or usage.app_pct >= 0
    assert all(v >= 0 for v in usage.account_pct.values())
    assert all(0 <= v < float("inf") for v in usage.regain_seconds.values())
