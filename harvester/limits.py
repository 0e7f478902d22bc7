"""RateGate: the one place that decides *when* a request may go out, per scope (app, account).

Meta's budgets differ by account and are not known in advance, and Meta extends a block for every
call made while blocked. So the gate steers by Meta's own signals and never sends into a block:

- in-flight caps for the whole run (bounded sockets and memory) and per account (until the first
  usage header returns, a burst to one account could overshoot its budget);
- optional static leaky buckets (aiolimiter) per account and per app, off unless configured;
- usage headers (`X-App-Usage`, `X-Business-Use-Case-Usage`): from `slow_down_at_pct` a scope is
  *hot* and gets one call in flight at a time, so each reply reports the usage before the next
  call goes. From `stop_at_pct` the scope is *full*: the gate estimates the budget from its own
  calls (Meta counts them in a rolling window: `N` of ours showing as `p` % means a budget of at
  least `100 N / (p + 1)`), and once that many are inside the window, the next call waits until
  the oldest one leaves it. Without calls of its own to go by, it probes at doubling intervals;
- throttling errors and `estimated_time_to_regain_access`: the scope is blocked for that long (or a
  doubling backoff when Meta gives no time), and nothing is sent to it before then;
- account-fatal errors (an expired token): the account is closed; nothing is sent with it again.

A throttled account never slows the others: every wait is per scope, except the app's own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import anyio
from aiolimiter import AsyncLimiter

from harvester.config import LimitSettings
from harvester.usage import Usage

APP_SCOPE = "app"
# Own calls remembered per scope to model its rolling window: enough for any budget a full scope
# can reach in practice, bounded so a huge backfill's app scope cannot grow without limit.
MAX_REMEMBERED_CALLS = 100_000
# Below this many calls, an estimated budget is mostly rounding error or other callers' usage.
MIN_MODELLED_BUDGET = 10


class GateStatistics(NamedTuple):
    acquired: int
    blocks: int
    waited_seconds: float
    hot_scopes: int
    closed_accounts: int


@dataclass(eq=False)  # scopes are compared by identity
class _Scope:
    window: float  # Meta's rolling window for this scope, seconds
    blocked_until: float = 0.0
    hot: bool = False
    capacity: int | None = None  # estimated budget while full; None while below the stop mark
    probe_wait: float = 0.0  # full, with no own calls to go by: the doubling probe interval
    backoff: float = 0.0  # the last block that came without a time; doubles until usage falls
    closed: BaseException | None = None
    sent: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_REMEMBERED_CALLS))
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    bucket: AsyncLimiter | None = None
    in_flight: anyio.CapacityLimiter | None = None

    def prune(self, now: float) -> int:
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        return len(self.sent)


class RateGate:
    """Grants permission to send one request for an account; see the module docstring."""

    def __init__(
        self,
        settings: LimitSettings,
        *,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._in_flight = anyio.CapacityLimiter(settings.max_requests_in_flight)
        self._scopes: dict[str, _Scope] = {}
        self._app = self._scopes[APP_SCOPE] = _Scope(
            settings.app_window_seconds, bucket=_bucket(settings.app_calls_per_hour)
        )
        self._acquired = 0
        self._blocks = 0
        self._waited = 0.0

    @asynccontextmanager
    async def slot(self, account_id: str) -> AsyncIterator[None]:
        """Hold the right to one call for `account_id` while the body sends it and reads the reply.

        Feed the reply's usage (`observe`) and any throttling (`block`) *inside* the body, so a hot
        scope's next call waits for what this one learned. Raises the account's closing error if
        the account was closed, even while this call was queued.
        """
        account = self._scope(account_id)
        scopes = (self._app, account)
        for scope in scopes:
            if scope.bucket is not None:
                await scope.bucket.acquire()
        while True:
            async with AsyncExitStack() as held:
                locked = []
                for scope in scopes:
                    await self._clear(scope)
                    if scope.hot:
                        await held.enter_async_context(scope.lock)
                        locked.append(scope)
                        await self._wait_for_room(scope)
                if account.in_flight is not None:
                    await held.enter_async_context(account.in_flight)
                await held.enter_async_context(self._in_flight)
                # While we queued, a scope may have turned hot (start again, this time through
                # its lock: taking it now, while holding slots, could deadlock), or blocked or
                # closed (wait or raise): a call never goes out on stale permission.
                if any(scope.hot and scope not in locked for scope in scopes):
                    continue
                for scope in scopes:
                    await self._clear(scope)
                self._acquired += 1
                yield
                # Stamped when the reply is in, a little after Meta counted the call: the model of
                # the window then errs late, on the safe side.
                now = self._clock()
                for scope in scopes:
                    scope.sent.append(now)
                return

    def observe(self, usage: Usage) -> None:
        """Feed the usage headers of a reply: make scopes hot or full, or block them."""
        if usage.app_pct is not None:
            self._apply(self._app, usage.app_pct, None)
        for account_id, pct in usage.account_pct.items():
            self._apply(self._scope(account_id), pct, usage.regain_seconds.get(account_id))

    def block(self, scope_name: str, seconds: float | None) -> None:
        """Send nothing to a scope for `seconds` (a throttling error); a backoff if None."""
        scope = self._scope(scope_name)
        if seconds is None or seconds <= 0:
            seconds = scope.backoff = self._double(scope.backoff)
        self._block(scope, seconds)

    def close(self, account_id: str, error: BaseException) -> None:
        """Never call this account again (its token is dead); queued calls raise `error`."""
        scope = self._scope(account_id)
        if scope.closed is None:
            scope.closed = error

    def closed(self, account_id: str) -> BaseException | None:
        scope = self._scopes.get(account_id)
        return None if scope is None else scope.closed

    def blocked_until(self, scope_name: str) -> float:
        scope = self._scopes.get(scope_name)
        return 0.0 if scope is None else scope.blocked_until

    def statistics(self) -> GateStatistics:
        return GateStatistics(
            acquired=self._acquired,
            blocks=self._blocks,
            waited_seconds=round(self._waited, 3),
            hot_scopes=sum(1 for s in self._scopes.values() if s.hot),
            closed_accounts=sum(1 for s in self._scopes.values() if s.closed is not None),
        )

    def _scope(self, name: str) -> _Scope:
        scope = self._scopes.get(name)
        if scope is None:
            settings = self._settings
            scope = self._scopes[name] = _Scope(
                settings.account_window_seconds,
                bucket=_bucket(settings.account_calls_per_hour),
                in_flight=anyio.CapacityLimiter(settings.max_requests_per_account),
            )
        return scope

    def _apply(self, scope: _Scope, pct: float, regain_seconds: float | None) -> None:
        if regain_seconds is not None and regain_seconds > 0:
            self._block(scope, regain_seconds)
        elif pct >= self._settings.stop_at_pct:
            scope.hot = True
            # This reply's call is not stamped yet: it is one more of ours inside the window.
            ours = scope.prune(self._clock()) + 1
            scope.capacity = int(100 * ours / (pct + 1))
            scope.probe_wait = self._double(scope.probe_wait)
        else:
            scope.hot = pct >= self._settings.slow_down_at_pct
            scope.capacity = None
            scope.probe_wait = scope.backoff = 0.0

    def _block(self, scope: _Scope, seconds: float) -> None:
        scope.hot = True
        until = self._clock() + seconds
        if until > scope.blocked_until:
            scope.blocked_until = until
            self._blocks += 1

    def _double(self, previous: float) -> float:
        first, most = self._settings.probe_seconds, self._settings.probe_max_seconds
        return min(most, previous * 2) if previous > 0 else first

    async def _wait_for_room(self, scope: _Scope) -> None:
        """A full scope: wait until one of our calls leaves the window, or probe."""
        if scope.capacity is None:
            return
        if scope.capacity < MIN_MODELLED_BUDGET:
            # Too few of our calls explain the usage: others share this budget, and our own
            # window says little about when room comes back. Probe instead.
            await self._wait(scope.probe_wait)
            return
        now = self._clock()
        while scope.prune(now) >= scope.capacity:
            await self._wait(scope.sent[0] + scope.window - now)
            now = self._clock()

    async def _clear(self, scope: _Scope) -> None:
        while True:
            if scope.closed is not None:
                raise scope.closed
            wait = scope.blocked_until - self._clock()
            if wait <= 0:
                return
            await self._wait(wait)

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._waited += seconds
            await self._sleep(seconds)


def _bucket(calls_per_hour: int | None) -> AsyncLimiter | None:
    return None if calls_per_hour is None else AsyncLimiter(calls_per_hour, 3600)
