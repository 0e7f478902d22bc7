"""Conditional metrics: whether to ask a media the metrics that exist only for some media, and
what a refusal of them means.

`crossposted_views` and `facebook_views` exist only for media shared to Facebook; asking either
for any other media fails the whole request (code 100 naming the metric). So they never travel in
a media's normal request (`routing.Route.conditional`): each media that may have them costs one
extra request (or batch op) per condition, with all of that condition's metrics together. A
refusal is expected, not an error: it writes no `errors` row, is not learned for the kind
(`routing.Refusals` never sees it) and is counted in the run report.

Quota is what users run out of, so the waste is bounded per account: once `refusals_in_a_row`
media of an account in a row refused a condition's metrics, the account is not asked them again
in the run. Until an account has shown one media that has the metrics, the bound is exact under
concurrency: it never has more asks in flight than refusals it may still spend (`reserve` says
WAIT until one is judged), so an account that never shares costs exactly that many refused asks.
Once one media had them, the account does share: its asks are then bounded only by its own
requests in flight. Either way a batch holds room for the asks that may go (`spare`), so a
media's ask goes in the POST of its main ops. Any bound of their own made the account's last
media wait for them, round trip after round trip, after their main ops were answered (50 at a
time: three to four round trips more per account at 200 media). The stop then still counts
refusals in a row, and may come up to one round of the account's POSTs late.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

import anyio

from harvester.graph.errors import MetricUnsupported
from harvester.harvest.report import RunCounters

__all__ = ["ConditionalAsks", "ConditionalStatistics", "Decision"]


class Decision(enum.Enum):
    ASK = "ask"  # send the extra request now; `settle` it when judged
    SKIP = "skip"  # do not ask this media (condition off, or the account is done with it)
    WAIT = "wait"  # asks in flight may use the account's last refusals: `await changed()`


class ConditionalStatistics(NamedTuple):
    asked: int  # extra requests sent and judged
    had: int  # media that had the metrics
    refused: int  # expected refusals (media not meeting the condition)
    accounts_stopped: int  # (account, condition) pairs no longer asked this run


@dataclass(slots=True)
class _Streak:
    refused: int = 0  # refusals in a row
    in_flight: int = 0
    stopped: bool = False
    shares: bool = False  # a media of the account had the metrics


class ConditionalAsks:
    """Shared by every insights worker of a run (one event loop: no locks needed).

    `off` holds the conditions not to ask at all (`[harvest] facebook_views = false` turns off
    "shared_to_facebook"); `refusals_in_a_row` is K, at least 1.
    """

    def __init__(
        self,
        counters: RunCounters,
        *,
        refusals_in_a_row: int = 10,
        off: Collection[str] = (),
    ) -> None:
        if refusals_in_a_row < 1:
            raise ValueError("refusals_in_a_row must be >= 1")
        self._counters = counters
        self._limit = refusals_in_a_row
        self._off = frozenset(off)
        self._streaks: dict[tuple[str, str], _Streak] = {}
        self._changed: dict[str, anyio.Event] = {}
        self._asked = 0
        self._had = 0

    def reserve(self, account_id: str, condition: str) -> Decision:
        """Whether to ask one media of the account its `condition` metrics now; ASK holds a
        place that `settle` must give back (in a `finally`)."""
        if condition in self._off:
            return Decision.SKIP
        streak = self._streaks.setdefault((account_id, condition), _Streak())
        if streak.stopped:
            return Decision.SKIP
        if not streak.shares and streak.in_flight >= self._limit - streak.refused:
            # Only reachable with asks in flight: each may be the refusal that ends the account.
            return Decision.WAIT
        streak.in_flight += 1
        return Decision.ASK

    def spare(self, account_id: str, condition: str) -> int | None:
        """How many more asks `reserve` would let go now: None for no bound of their own (the
        account shares), 0 when it says SKIP or WAIT. A batch holds room for that many, so a
        media's ask goes in the POST of its main ops."""
        streak = self._streaks.get((account_id, condition))
        if condition in self._off or (streak is not None and streak.stopped):
            return 0
        if streak is None:
            return self._limit
        return None if streak.shares else max(0, self._limit - streak.refused - streak.in_flight)

    def asking(self, account_id: str, condition: str) -> bool:
        """Whether the account may still be asked `condition`'s metrics in this run."""
        streak = self._streaks.get((account_id, condition))
        return condition not in self._off and (streak is None or not streak.stopped)

    async def changed(self, account_id: str) -> None:
        """Wait until an ask of the account is settled (then `reserve` again)."""
        event = self._changed.get(account_id)
        if event is None:
            event = self._changed[account_id] = anyio.Event()
        await event.wait()

    def settle(self, account_id: str, condition: str, *, refused: bool | None) -> None:
        """An ASK is done: False, the media had the metrics; True, it refused them as expected;
        None, no verdict (another error, cancelled): the place is given back unjudged."""
        streak = self._streaks[(account_id, condition)]
        streak.in_flight -= 1
        if refused is not None:
            self._asked += 1
        if refused is False:
            self._had += 1
            streak.refused = 0
            streak.shares = True
        elif refused:
            self._counters.conditional_refused += 1
            streak.refused += 1
            if streak.refused >= self._limit and not streak.stopped:
                streak.stopped = True
                self._counters.conditional_accounts_stopped += 1
        event = self._changed.pop(account_id, None)
        if event is not None:
            event.set()

    @staticmethod
    def expected(error: BaseException, asked: Collection[str]) -> bool:
        """Whether `error` is the expected refusal of a conditional request for `asked`: Meta's
        code 100 names one of the conditional metrics (a metric unsupported for the kind would
        name the same metric in a normal request, which never holds one)."""
        return isinstance(error, MetricUnsupported) and error.metric in asked

    def statistics(self) -> ConditionalStatistics:
        return ConditionalStatistics(
            asked=self._asked,
            had=self._had,
            refused=self._counters.conditional_refused,
            accounts_stopped=self._counters.conditional_accounts_stopped,
        )
