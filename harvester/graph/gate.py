"""RateGate: the one place that decides *when* a request may go out, per scope (app, account).

Meta's budgets differ by account and are not known in advance, and Meta extends a block for every
call made while blocked. So the gate steers by Meta's own signals and never sends into a block:

- in-flight caps for the whole run (bounded sockets and memory) and per account (until the first
  usage header returns, a burst to one account could overshoot its budget);
- optional static leaky buckets (aiolimiter) per account and per app, off unless configured; when
  processes share the app's budget (`harvest.ray_engine`), permits from `AppPermits` instead;
- usage headers (`X-App-Usage`, `X-Business-Use-Case-Usage`): from `slow_down_at_pct` a scope is
  *hot* and gets one call in flight at a time, so each reply reports the usage before the next
  call goes. From `stop_at_pct` the scope is *full*: the gate estimates the budget from its own
  calls (Meta counts them in a rolling window: `N` of ours showing as `p` % means a budget of at
  least `100 N / (p + 1)`), and once that many are inside the window, the next call waits until
  the oldest one leaves it. Without calls of its own to go by, it probes at doubling intervals;
- throttling errors and `estimated_time_to_regain_access`: the scope is blocked for that long (or a
  doubling backoff when Meta gives no time), and nothing is sent to it before then;
- account-fatal errors (an expired token): the account is closed; nothing is sent with it again;
- what a call is charged to (`Charge`): the app and its account, as Meta counts an insights
  read against both the platform limit and the account's BUC; or the app alone, for calls Meta
  counts against the platform limit only (business discovery), which then neither wait for the
  account's budget nor use it up (a closed account still refuses them: its token is dead).

A throttled account never slows the others: every wait is per scope, except the app's own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

import anyio
from aiolimiter import AsyncLimiter

from harvester.config import LimitSettings
from harvester.graph.usage import Usage

APP_SCOPE = "app"
# Which budgets a call uses: the app's and its account's, or the app's only (see module doc).
Charge = Literal["account", "app"]
# Our calls are counted in this many time buckets per rolling window: memory per scope stays
# bounded however many calls it gets, and rounding costs at most 0.1 % of a window.
WINDOW_BUCKETS = 1000
# Below this many calls, an estimated budget is mostly rounding error or other callers' usage.
MIN_MODELLED_BUDGET = 10


class AppPermits(Protocol):
    """The app budget when other processes share it (`harvest.ray_engine`): the gate takes `n`
    permits for every `n` calls to the app scope and passes on what Meta says about the app."""

    async def acquire(self, n: int) -> None: ...

    def observe(self, app_pct: float) -> None: ...

    def block(self, seconds: float) -> None: ...


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
    full: bool = False  # usage at or above the stop mark: calls wait for room (see slot)
    estimate: int | None = None  # a lower bound of the budget, from the last usage seen
    probe_wait: float = 0.0  # full, with no own calls to go by: the doubling probe interval
    backoff: float = 0.0  # the last block that came without a time; doubles until usage falls
    closed: BaseException | None = None
    claimed: int = 0  # calls of slots entered and not yet sent (queued at the gate)
    flying: int = 0  # calls sent and not yet answered
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    bucket: AsyncLimiter | None = None
    in_flight: anyio.CapacityLimiter | None = None
    # Our calls by send and by answer time. Meta counts a call from its arrival, which lies
    # between the two, so counting by answer time bounds Meta's count from above (when room comes
    # back) and counting answered calls by send time bounds it from below (how large the budget
    # is). Bucket times round toward the safe side of each bound.
    sent: _Calls = field(init=False)
    answered: _Calls = field(init=False)

    def __post_init__(self) -> None:
        self.sent = _Calls(self.window, late=False)
        self.answered = _Calls(self.window, late=True)

    def inside(self, now: float) -> int:
        """At most this many of our calls are inside Meta's window now."""
        return self.answered.count(now) + self.flying

    def counted(self, now: float) -> int:
        """At least this many of our calls are inside Meta's window now."""
        return self.sent.count(now) - self.flying


class _Calls:
    """Counts of calls by time bucket within a rolling window."""

    __slots__ = ("_buckets", "_count", "_late", "_quantum", "_window")

    def __init__(self, window: float, *, late: bool) -> None:
        self._window = window
        self._quantum = window / WINDOW_BUCKETS
        self._late = late  # round a call's time up (it leaves later) or down (it leaves sooner)
        self._buckets: deque[list[int]] = deque()  # [bucket index, calls]
        self._count = 0

    def add(self, now: float, calls: int) -> None:
        index = (math.ceil if self._late else math.floor)(now / self._quantum)
        if self._buckets and self._buckets[-1][0] == index:
            self._buckets[-1][1] += calls
        else:
            self._buckets.append([index, calls])
        self._count += calls

    def count(self, now: float) -> int:
        start = now - self._window
        buckets = self._buckets
        while buckets and buckets[0][0] * self._quantum <= start:
            self._count -= buckets.popleft()[1]
        return self._count

    def leaves_at(self, nth: int) -> float:
        """When the nth oldest call counted here (from 1) leaves the window."""
        seen = 0
        for index, calls in self._buckets:
            seen += calls
            if seen >= nth:
                return index * self._quantum + self._window
        raise IndexError(nth)


class RateGate:
    """Grants permission to send one request for an account; see the module docstring."""

    def __init__(
        self,
        settings: LimitSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        app_permits: AppPermits | None = None,
    ) -> None:
        self._settings = settings
        self._app_permits = app_permits
        # The default is asyncio's own clock (its loop time is `time.monotonic`), read directly:
        # `anyio.current_time` looks the event loop up on every call, and the gate reads the
        # clock several times per request (~5 % of the client's CPU in a batched harvest).
        self._clock = clock
        self._sleep = sleep
        self._in_flight = anyio.CapacityLimiter(settings.max_requests_in_flight)
        self._scopes: dict[str, _Scope] = {}
        # Shared permits replace the app's static bucket: it would know this process's calls only.
        app_bucket = _bucket(settings.app_calls_per_hour) if app_permits is None else None
        self._app = self._scopes[APP_SCOPE] = _Scope(settings.app_window_seconds, bucket=app_bucket)
        self._acquired = 0
        self._blocks = 0
        self._waited = 0.0

    @asynccontextmanager
    async def slot(
        self, account_id: str, cost: int = 1, *, charge: Charge = "account"
    ) -> AsyncIterator[None]:
        """Hold the right to `cost` calls for `account_id` while the body sends them (one request,
        or one batch POST of `cost` ops: Meta charges every op) and reads the reply; `charge`
        "app" for a call Meta counts against the app's platform limit only.

        Feed the reply's usage (`observe`) and any throttling (`block`) *inside* the body, so a hot
        scope's next call waits for what this one learned. Raises the account's closing error if
        the account was closed, even while this call was queued.
        """
        account = self._scope(account_id)
        if charge == "app" and account.closed is not None:
            raise account.closed
        scopes: tuple[_Scope, ...] = (self._app, account) if charge == "account" else (self._app,)
        # Claimed before the first await, so `room` seen by the next caller already counts it.
        for scope in scopes:
            scope.claimed += cost
        claimed = True
        try:
            async with self._permission(scopes, cost):
                now = self._clock()
                for scope in scopes:
                    scope.claimed -= cost
                    scope.flying += cost
                    scope.sent.add(now, cost)
                claimed = False
                try:
                    yield
                finally:
                    now = self._clock()
                    for scope in scopes:
                        scope.flying -= cost
                        scope.answered.add(now, cost)
        finally:
            if claimed:
                for scope in scopes:
                    scope.claimed -= cost

    @asynccontextmanager
    async def _permission(self, scopes: tuple[_Scope, ...], cost: int) -> AsyncIterator[None]:
        account = scopes[1] if len(scopes) > 1 else None
        for scope in scopes:
            if scope.bucket is not None:
                await scope.bucket.acquire(min(cost, scope.bucket.max_rate))
        while True:
            async with AsyncExitStack() as held:
                locked = []
                cooled = False
                for scope in scopes:
                    if self._held_back(scope):
                        await self._clear(scope)
                    if scope.hot or self._projected_hot(scope):
                        await held.enter_async_context(scope.lock)
                        if not (scope.hot or self._projected_hot(scope)):
                            # It cooled while we queued (a reply showed room): go side by
                            # side again, or every call queued behind the lock would go one
                            # by one, each a round trip.
                            cooled = True
                            break
                        locked.append(scope)
                        await self._wait_for_room(scope, cost)
                if cooled:
                    continue
                if account is not None and account.in_flight is not None:
                    await _take(held, account.in_flight)
                await _take(held, self._in_flight)
                # While we queued, a scope may have turned hot (start again, this time through
                # its lock: taking it now, while holding slots, could deadlock), or blocked or
                # closed (wait or raise): a call never goes out on stale permission.
                if any(
                    (scope.hot or self._projected_hot(scope)) and scope not in locked
                    for scope in scopes
                ):
                    continue
                for scope in scopes:
                    if self._held_back(scope):
                        await self._clear(scope)
                if self._app_permits is not None:
                    # Taken last, right before the call goes: a permit counts in the shared
                    # window from when it is granted, so it must not age in a local queue.
                    await self._app_permits.acquire(cost)
                self._acquired += 1
                yield
                return

    def observe(self, usage: Usage, pending: int = 1) -> None:
        """Feed the usage headers of a reply: make scopes hot or full, or block them.

        `pending` is how many calls of the slot this reply accounts for (the ops of a batch):
        Meta counted them already, the gate stamps them only when the slot ends."""
        if usage.app_pct is not None:
            self._apply(self._app, usage.app_pct, None, pending)
            if self._app_permits is not None:
                self._app_permits.observe(usage.app_pct)
        for account_id, pct in usage.account_pct.items():
            regain = usage.regain_seconds.get(account_id)
            self._apply(self._scope(account_id), pct, regain, pending)

    def room(self, account_id: str) -> int | None:
        """How many calls an account (and the app) can surely take now without passing the stop
        mark; None before any usage was seen. Batches are cut to it, so one POST of many ops
        cannot overshoot a budget smaller than the batch."""
        now = self._clock()
        rooms = [
            int(scope.estimate * self._settings.stop_at_pct / 100)
            - scope.inside(now)
            - scope.claimed
            for scope in (self._app, self._scope(account_id))
            if scope.estimate is not None
        ]
        return max(1, min(rooms)) if rooms else None

    def block(self, scope_name: str, seconds: float | None) -> None:
        """Send nothing to a scope for `seconds` (a throttling error); a backoff if None."""
        scope = self._scope(scope_name)
        if seconds is None or seconds <= 0:
            seconds = scope.backoff = self._double(scope.backoff)
        self._block(scope, seconds)
        if scope is self._app and self._app_permits is not None:
            self._app_permits.block(seconds)

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

    def calls_in_window(self, scope_name: str) -> int:
        """Our calls charged to a scope (the app's, an account's) inside its window now, at
        least: what a `Charge` spent where."""
        scope = self._scopes.get(scope_name)
        return 0 if scope is None else scope.counted(self._clock())

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

    def _apply(self, scope: _Scope, pct: float, regain_seconds: float | None, pending: int) -> None:
        if regain_seconds is not None and regain_seconds > 0:
            self._block(scope, regain_seconds)
            return
        # `pending`: calls of this very slot that Meta had counted when it answered (the ops of a
        # batch run in order); they are still flying until the slot ends.
        ours = scope.counted(self._clock()) + pending
        estimate = int(100 * ours / (pct + 1))
        scope.estimate = estimate
        scope.full = pct >= self._settings.stop_at_pct
        if scope.full:
            scope.hot = True
            scope.probe_wait = self._double(scope.probe_wait)
        else:
            scope.hot = pct >= self._settings.slow_down_at_pct
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

    def _projected_hot(self, scope: _Scope) -> bool:
        """Hot by our own count: what we sent and are sending would pass the slow-down mark of
        the budget estimated so far. Concurrent callers learn of each other's claims here before
        any reply can tell them, so together they cannot overshoot."""
        if scope.estimate is None:
            return False
        used = scope.inside(self._clock()) + scope.claimed
        if used * 100 < scope.estimate * self._settings.slow_down_at_pct:
            return False
        scope.hot = True
        return True

    async def _wait_for_room(self, scope: _Scope, cost: int) -> None:
        """A full scope: wait until enough of our calls left the window, or probe."""
        capacity = scope.estimate
        if not scope.full or capacity is None:
            return
        if capacity < MIN_MODELLED_BUDGET:
            # Too few of our calls explain the usage: others share this budget, and our own
            # window says little about when room comes back. Probe instead.
            await self._wait(scope.probe_wait)
            return
        now = self._clock()
        room_needed = min(cost, capacity)
        while (excess := scope.inside(now) + room_needed - capacity) > 0:
            if excess > scope.answered.count(now):
                # Calls of ours still in flight fill the room: wait for them, then look again.
                await self._wait(scope.probe_wait or self._settings.probe_seconds)
            else:
                # The excess-th oldest answered call leaves Meta's window by then at the latest.
                await self._wait(scope.answered.leaves_at(excess) - now)
            now = self._clock()

    def _held_back(self, scope: _Scope) -> bool:
        """Whether `_clear` has anything to do (checked first: most calls find nothing)."""
        return scope.closed is not None or scope.blocked_until > self._clock()

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


async def _take(held: AsyncExitStack, limiter: anyio.CapacityLimiter) -> None:
    """Hold a token of `limiter` until `held` closes. A free token is taken without a trip
    through the event loop (`acquire` always yields once; a batched harvest passes two limiters
    per POST); `acquire_nowait` keeps the queue's order, refusing while others wait."""
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()
    held.callback(limiter.release)


def _bucket(calls_per_hour: int | None) -> AsyncLimiter | None:
    return None if calls_per_hour is None else AsyncLimiter(calls_per_hour, 3600)
