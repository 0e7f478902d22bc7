"""ConditionalAsks alone: the K-in-a-row bound, exact with asks in flight, and the off switch."""

from __future__ import annotations

import pytest

from harvester.graph.errors import InvalidRequest, MetricUnsupported
from harvester.harvest.conditional import ConditionalAsks, Decision
from harvester.harvest.report import RunCounters

FB = "shared_to_facebook"


def test_k_refusals_in_a_row_stop_the_account_and_no_more_are_in_flight() -> None:
    counters = RunCounters()
    asks = ConditionalAsks(counters, refusals_in_a_row=3)
    assert [asks.reserve("a", FB) for _ in range(4)] == [Decision.ASK] * 3 + [Decision.WAIT]
    asks.settle("a", FB, refused=True)
    asks.settle("a", FB, refused=True)
    assert asks.reserve("a", FB) is Decision.WAIT  # the third in flight may end the account
    asks.settle("a", FB, refused=True)
    assert asks.reserve("a", FB) is Decision.SKIP and not asks.asking("a", FB)
    assert asks.reserve("b", FB) is Decision.ASK  # another account is not touched
    assert (counters.conditional_refused, counters.conditional_accounts_stopped) == (3, 1)


def test_a_media_that_has_them_resets_the_streak() -> None:
    asks = ConditionalAsks(RunCounters(), refusals_in_a_row=2)
    for refused in (True, False, True, None, False, True):
        assert asks.reserve("a", FB) is Decision.ASK
        asks.settle("a", FB, refused=refused)
    assert asks.asking("a", FB)
    assert asks.statistics() == (5, 2, 3, 0)  # None (no verdict) is not counted as asked


def test_an_account_that_shares_is_asked_wide() -> None:
    """Exact until a media had the metrics; then without a bound of its own, and K refusals in
    a row, as judged, still stop the account. `spare` says how many `reserve` would let go."""
    asks = ConditionalAsks(RunCounters(), refusals_in_a_row=3)
    assert asks.spare("a", FB) == 3
    assert [asks.reserve("a", FB) for _ in range(4)] == [Decision.ASK] * 3 + [Decision.WAIT]
    assert asks.spare("a", FB) == 0
    asks.settle("a", FB, refused=True)
    assert asks.spare("a", FB) == 0  # 2 in flight, 1 refusal spent: 3 - 1 - 2
    asks.settle("a", FB, refused=False)
    assert asks.spare("a", FB) is None and asks.spare("b", FB) == 3
    asks.settle("a", FB, refused=True)
    assert [asks.reserve("a", FB) for _ in range(400)] == [Decision.ASK] * 400
    asks.settle("a", FB, refused=True)
    asks.settle("a", FB, refused=True)  # the third in a row
    assert asks.reserve("a", FB) is Decision.SKIP and not asks.asking("a", FB)
    assert asks.spare("a", FB) == 0
    assert asks.reserve("b", FB) is Decision.ASK  # another account starts exact
    assert [asks.reserve("b", FB) for _ in range(3)] == [Decision.ASK] * 2 + [Decision.WAIT]


def test_off_conditions_are_never_asked() -> None:
    asks = ConditionalAsks(RunCounters(), off=(FB,))
    assert asks.reserve("a", FB) is Decision.SKIP and not asks.asking("a", FB)
    assert asks.spare("a", FB) == 0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MetricUnsupported("x", metric="facebook_views"), True),
        (MetricUnsupported("x", metric="reach"), False),
        (MetricUnsupported("x", metric=None), False),
        (InvalidRequest("x"), False),
    ],
)
def test_only_a_refusal_naming_an_asked_conditional_metric_is_expected(
    error: Exception, expected: bool
) -> None:
    assert ConditionalAsks.expected(error, ("crossposted_views", "facebook_views")) is expected
