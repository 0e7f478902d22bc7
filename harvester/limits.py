"""RateGate: the one place that decides *when* a request may go out.

Three independent brakes, all per scope so a throttled account never slows the others:
- an in-flight cap for the whole run (bounded sockets, bounded memory);
- optional static leaky buckets (aiolimiter) per account and per app, off unless configured, because
  Meta's real budgets differ by account and are not known in advance;
- adaptive pacing from Meta's own signals: `X-App-Usage` / `X-Business-Use-Case-Usage`
  percentages slow a scope down from `slow_down_at_pct` and block it at `stop_at_pct`; a throttling
  error blocks it until `estimated_time_to_regain_access` (or a backoff when none is given). Meta
  extends a block for every call made while blocked, so no call goes to a blocked scope until its
  time has passed.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NamedTuple

import anyio
from aiolimiter import AsyncLimiter

from harvester.config import LimitSettings
from harvester.usage import Usage

APP_SCOPE = "app"

# When Meta says "stop" without saying for how long, wait this long before probing again.
DEFAULT_BLOCK_SECONDS = 60.0


class GateStatistics(NamedTuple):
    in_flight: int
    acquired: int
    blocks: int
    paced_seconds: float
    blocked_scopes: int


class RateGate:
    """Grants permission to send one request for an account; see the module docstring."""

    def __init__(
        self,
        settings: LimitSettings,
        *,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sleep = sleep or anyio.sleep
        self._in_flight = anyio.CapacityLimiter(settings.max_requests_in_flight)
        self._app_bucket = _bucket(settings.app_calls_per_hour)
        self._account_buckets: dict[str, AsyncLimiter] = {}
        # scope -> monotonic time before which nothing may be sent to it
        self._blocked_until: dict[str, float] = {}
        # scope -> extra spacing between calls (seconds) while usage is high
        self._pace: dict[str, float] = {}
        self._next_slot: dict[str, float] = {}
        self._acquired = 0
        self._blocks = 0
        self._paced_seconds = 0.0

    @asynccontextmanager
    async def slot(self, account_id: str) -> AsyncIterator[None]:
        """Wait until both scopes may be called, then hold one in-flight slot for the request."""
        await self._wait_scope(APP_SCOPE)
        await self._wait_scope(account_id)
        if self._app_bucket is not None:
            await self._app_bucket.acquire()
        bucket = self._account_bucket(account_id)
        if bucket is not None:
            await bucket.acquire()
        async with self._in_flight:
            # A block may have started while we queued for a slot: never send into it.
            await self._wait_scope(APP_SCOPE)
            await self._wait_scope(account_id)
            self._acquired += 1
            yield

    def observe(self, usage: Usage) -> None:
        """Feed the usage headers of a reply: pace or block the scopes they describe."""
        if usage.app_pct is not None:
            self._apply_pct(APP_SCOPE, usage.app_pct, None)
        for account_id, pct in usage.account_pct.items():
            self._apply_pct(account_id, pct, usage.regain_seconds.get(account_id))

    def block(self, scope: str, seconds: float | None) -> None:
        """Stop calling `scope` for `seconds` (a throttling error or a high-water mark)."""
        delay = seconds if seconds is not None and seconds > 0 else DEFAULT_BLOCK_SECONDS
        until = self._clock() + delay
        if until > self._blocked_until.get(scope, 0.0):
            self._blocked_until[scope] = until
            self._blocks += 1

    def blocked_until(self, scope: str) -> float:
        return self._blocked_until.get(scope, 0.0)

    def statistics(self) -> GateStatistics:
        now = self._clock()
        return GateStatistics(
            in_flight=int(self._in_flight.borrowed_tokens),
            acquired=self._acquired,
            blocks=self._blocks,
            paced_seconds=self._paced_seconds,
            blocked_scopes=sum(1 for t in self._blocked_until.values() if t > now),
        )

    def _account_bucket(self, account_id: str) -> AsyncLimiter | None:
        if self._settings.account_calls_per_hour is None:
            return None
        bucket = self._account_buckets.get(account_id)
        if bucket is None:
            bucket = self._account_buckets[account_id] = AsyncLimiter(
                self._settings.account_calls_per_hour, 3600
            )
        return bucket

    def _apply_pct(self, scope: str, pct: float, regain_seconds: float | None) -> None:
        stop, slow = self._settings.stop_at_pct, self._settings.slow_down_at_pct
        if (regain_seconds is not None and regain_seconds > 0) or pct >= stop:
            self.block(scope, regain_seconds)
        elif pct >= slow:
            # Spread the remaining headroom: the closer to the stop mark, the longer the spacing.
            fraction = (pct - slow) / max(stop - slow, 1e-9)
            self._pace[scope] = 0.05 + 2.0 * fraction * fraction
        else:
            self._pace.pop(scope, None)

    async def _wait_scope(self, scope: str) -> None:
        while True:
            now = self._clock()
            wait = self._blocked_until.get(scope, 0.0) - now
            pace = self._pace.get(scope)
            if pace is not None:
                slot = max(self._next_slot.get(scope, now), now)
                self._next_slot[scope] = slot + pace
                wait = max(wait, slot - now)
            if wait <= 0:
                return
            self._paced_seconds += wait
            await self._sleep(wait)
            if pace is not None:
                return


def _bucket(calls_per_hour: int | None) -> AsyncLimiter | None:
    if calls_per_hour is None:
        return None
    return AsyncLimiter(max(1, math.floor(calls_per_hour)), 3600)
