"""The health watch: when a run in which nothing works stops, and when it never does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harvester.graph.errors import (
    AppSecretRejected,
    GraphError,
    MetricUnsupported,
    NothingWorks,
    PermissionDenied,
    Throttled,
    TokenInvalid,
    TransientServer,
    TransportError,
    UnknownVersion,
)
from harvester.graph.health import CERTAIN_AFTER, Cause, HealthWatch, cause_of, describe

HOST = "graph.example.invalid"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def dns() -> GraphError:
    return TransportError("ClientConnectorDNSError: Cannot connect to host", reason="dns")


def refused() -> GraphError:
    return TransportError("ClientConnectorError: Connect call failed", reason="refused")


def timeout() -> GraphError:
    return TransportError("ConnectionTimeoutError: timed out")


def http500() -> GraphError:
    return TransientServer("An unknown error has occurred.", status=500, code=1)


def http503() -> GraphError:
    return TransientServer("HTML page instead of JSON (HTTP 503, 120 bytes)", status=503)


def version() -> GraphError:
    return UnknownVersion("Unknown path components: /v99.0/", status=400, code=2500)


def secret() -> GraphError:
    return AppSecretRejected("Invalid appsecret_proof provided", status=400, code=100)


def token() -> GraphError:
    return TokenInvalid("Error validating access token", status=400, code=190, subcode=463)


def denied() -> GraphError:
    return PermissionDenied("(#10) Application does not have permission", status=400, code=10)


def metric() -> GraphError:
    return MetricUnsupported("does not support the reach metric", status=400, code=100)


def throttle() -> GraphError:
    return Throttled("too many calls", status=400, code=4, scope="app")


OK = None  # a success
Event = tuple[float, Callable[[], GraphError] | None]


def play(events: list[Event], limit: float = 60.0) -> tuple[int | None, NothingWorks | None]:
    """Feed the events (time, outcome) to a watch; the index of the first that returned a
    NothingWorks, and that error."""
    clock = Clock()
    watch = HealthWatch(limit, host=HOST, api_version="v99.0", clock=clock)
    for index, (at, outcome) in enumerate(events):
        clock.now = at
        watch.attempting()
        if outcome is None:
            watch.succeeded(f"acct{index % 3}")
            continue
        stop = watch.failed(f"acct{index % 3}", outcome())
        if stop is not None:
            return index, stop
    return None, None


def every(seconds: float, until: float, outcome: Callable[[], GraphError] | None) -> list[Event]:
    n = int(until / seconds) + 1
    return [(i * seconds, outcome) for i in range(n)]


# (case, limit, events, index of the failure that stops the run or None, the cause)
CASES: list[tuple[str, float, list[Event], int | None, Cause | None]] = [
    ("dns for a minute", 60.0, every(10, 120, dns), 6, Cause.DNS),
    ("refused for a minute", 60.0, every(10, 120, refused), 6, Cause.REFUSED),
    ("only 5xx", 60.0, every(15, 120, http500), 4, Cause.SERVER),
    (
        "5xx and timeouts are one cause",
        60.0,
        [(0, http500), (20, timeout), (40, http503), (60, timeout)],
        3,
        Cause.SERVER,
    ),
    ("not yet a minute", 60.0, every(10, 59, http500), None, None),
    ("a shorter limit", 5.0, every(1, 30, dns), 5, Cause.DNS),
    ("a success first", 60.0, [(0, OK), *every(10, 120, dns)[1:]], None, None),
    (
        "recovers after a few 500s",
        60.0,
        [(0, http500), (1, http500), (2, OK), *every(10, 120, http500)[1:]],
        None,
        None,
    ),
    ("unknown version, soon", 60.0, every(0.1, 10, version), CERTAIN_AFTER - 1, Cause.VERSION),
    ("wrong secret, soon", 60.0, every(0.1, 10, secret), CERTAIN_AFTER - 1, Cause.APP_SECRET),
    (
        "an expired token is neutral",
        60.0,
        [(0, secret), (0.1, token), (0.2, secret), (0.3, denied), (0.4, secret)],
        4,
        Cause.APP_SECRET,
    ),
    (
        "a refused metric is a sign of life",
        60.0,
        [(0, dns), (1, metric), *every(10, 120, dns)[1:]],
        None,
        None,
    ),
    (
        "a throttle is a sign of life",
        60.0,
        [(0, throttle), *every(10, 120, http500)[1:]],
        None,
        None,
    ),
    ("different causes", 60.0, [(0, dns), (10, http500), *every(10, 120, dns)[2:]], None, None),
    ("disabled", 0.0, every(1, 120, version), None, None),
    (
        "timeouts fit an unresolvable host",
        60.0,
        [(0, timeout), (10, dns), (20, timeout), (40, dns), (60, timeout)],
        4,
        Cause.DNS,
    ),
    (
        "timeouts, then refused",
        60.0,
        [(0, timeout), (30, refused), (60, refused)],
        2,
        Cause.REFUSED,
    ),
    (
        "timeouts do not count towards a wrong version",
        60.0,
        [(0, version), (0.1, timeout), (0.2, version), (0.3, timeout), (0.4, version)],
        4,
        Cause.VERSION,
    ),
    (
        "the minute counts from the first attempt",
        60.0,
        [(0, timeout), (60, timeout)],
        1,
        Cause.SERVER,
    ),
]


@pytest.mark.parametrize(
    ("case", "limit", "events", "index", "cause"), CASES, ids=[c[0] for c in CASES]
)
def test_when_a_run_stops(
    case: str, limit: float, events: list[Event], index: int | None, cause: Cause | None
) -> None:
    stopped_at, stop = play(events, limit)
    assert stopped_at == index
    assert (stop.cause if stop is not None else None) == (cause.value if cause else None)
    if stop is not None:
        assert stop.host == HOST


def test_the_minute_counts_from_the_first_attempt_not_its_failure() -> None:
    clock = Clock()
    watch = HealthWatch(60.0, host=HOST, api_version="v25.0", clock=clock)
    watch.attempting()  # a request that hangs until its timeout
    clock.now = 45.0
    assert watch.failed("a", timeout()) is None
    clock.now = 61.0
    watch.attempting()
    stop = watch.failed("a", timeout())
    assert stop is not None
    assert stop.message == (
        f"nothing works: server error (no reply) at {HOST}; all 2 requests so far failed "
        "alike, none succeeded"
    )


def test_the_stop_names_each_host_the_failures_met_in_order() -> None:
    clock = Clock()
    watch = HealthWatch(1.0, host="graph.example:1", api_version="v25.0", clock=clock)
    assert watch.failed("a", refused(), "ig.example:2") is None
    assert watch.failed("b", refused()) is None  # no host given: the default one
    clock.now = 2.0
    stop = watch.failed("c", refused(), "ig.example:2")
    assert stop is not None
    assert stop.reason == "host unreachable (ig.example:2, graph.example:1: refused)"
    assert watch.explain(refused(), "ig.example:2") == "host unreachable (ig.example:2: refused)"


def test_once_stopped_every_failure_stops_but_a_token_error_stays_itself() -> None:
    clock = Clock()
    watch = HealthWatch(1.0, host="127.0.0.1:9", api_version="v25.0", clock=clock)
    assert watch.stopped() is None
    assert watch.failed("a", refused()) is None
    clock.now = 2.0
    first = watch.failed("b", refused())
    assert first is not None
    assert first.message == (
        "nothing works: host unreachable (127.0.0.1:9: refused); all 2 requests so far failed "
        "alike, none succeeded"
    )
    later, again = watch.failed("c", http500()), watch.stopped()
    assert later is not None and again is not None
    assert later is not first and again is not later  # one fresh error per raiser
    assert (later.message, again.message, later.reason) == (
        first.message,
        first.message,
        "host unreachable (127.0.0.1:9: refused)",
    )
    assert watch.failed("d", token()) is None
    # A success after the stop does not take it back: the run is already ending.
    watch.succeeded("e")
    assert watch.stopped() is not None
    assert watch.statistics() == (5, 4, False, "refused", True)


def test_accounts_none_of_whose_requests_succeeded() -> None:
    watch = HealthWatch(0.0, host=HOST, api_version="v25.0", clock=Clock())
    watch.succeeded("ok")
    assert watch.failed("ok", http500()) is None
    error = http500()
    watch.failed("dead", timeout())
    watch.failed("dead", error)
    watch.failed("late", http500())
    watch.succeeded("late")
    assert (watch.unanswered("ok"), watch.unanswered("dead"), watch.unanswered("late")) == (
        None,
        error,
        None,
    )
    assert watch.unanswered("never asked") is None


@pytest.mark.parametrize(
    ("error", "cause", "phrase"),
    [
        (dns(), Cause.DNS, f"host unreachable ({HOST}: DNS)"),
        (refused(), Cause.REFUSED, f"host unreachable ({HOST}: refused)"),
        (http500(), Cause.SERVER, "server error (HTTP 500)"),
        (http503(), Cause.SERVER, "server error (HTTP 503)"),
        (timeout(), Cause.SERVER, "server error (no reply)"),
        (version(), Cause.VERSION, "unknown API version (v99.0)"),
        (secret(), Cause.APP_SECRET, "wrong app secret"),
        (token(), None, None),
        (metric(), None, None),
        (throttle(), None, None),
        (NothingWorks("x", cause="dns", host=HOST, reason="as worded"), Cause.DNS, "as worded"),
    ],
)
def test_causes_and_their_words(error: GraphError, cause: Cause | None, phrase: str | None) -> None:
    assert cause_of(error) is cause
    watch = HealthWatch(60.0, host=HOST, api_version="v99.0", clock=Clock())
    assert watch.explain(error) == phrase
    if cause is not None and not isinstance(error, NothingWorks):
        assert describe(cause, host=HOST, api_version="v99.0", status=error.status) == phrase
