"""The app rate gate of a sharded run: one app budget handed out to many processes in leases.

Meta counts an app's calls in one rolling window whoever makes them, so shards on several machines
must draw from one budget. A round trip to a shared gate per call would cost more than the call's
own latency, so a shard asks for a *lease*: a block of permits it spends locally until the lease
expires. Two halves, with no Ray in either (`harvest.ray_engine` hosts `AppBudget` in an actor
and hands each shard a `LeasedPermits` talking to it):

- `AppBudget` grants leases. A permit counts against the window from its grant until the lease
  expires plus one window (and a margin): however late in the lease a shard spends it, Meta has
  forgotten that call before the permit is granted again. Permits a lease did not use come back
  with the shard's next request and are struck from the window. Meta's app usage
  (`X-App-Usage`) and app throttling, seen by any shard, shrink or stop the leases of all.
- `LeasedPermits` is the shard's side, the `AppPermits` of its `RateGate`: it spends its lease,
  asks for a new one when it runs out or expires, and forwards what Meta says about the app.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import anyio

__all__ = ["AppBudget", "BudgetStatistics", "LeaseGrant", "LeasedPermits"]

# A lease lives this share of the window: long enough that a shard rarely asks, short enough that
# permits it cannot spend (its accounts throttled) come back to the others soon.
LEASE_SHARE = 0.05
# Permits count this much longer than the window: Meta stamps a call a little after we send it.
WINDOW_MARGIN = 1.01


class LeaseGrant(NamedTuple):
    """`permits` to spend until `ttl` seconds after the request left; none: ask again after
    `wait` seconds."""

    lease_id: int
    permits: int
    ttl: float
    wait: float


class BudgetStatistics(NamedTuple):
    leases: int
    granted: int
    returned: int
    refusals: int
    app_pct: float | None
    blocks: int


class AppBudget:
    """The app's budget over its rolling window; `calls_per_window` None means unknown (then only
    Meta's usage and throttling limit the leases)."""

    def __init__(
        self,
        calls_per_window: int | None,
        window_seconds: float,
        *,
        lease_size: int,
        slow_down_at_pct: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = calls_per_window
        self._window = window_seconds
        self._ttl = window_seconds * LEASE_SHARE
        self._lease_size = lease_size
        self._slow_down_at = slow_down_at_pct
        self._clock = clock
        self._ids = itertools.count(1)
        self._grants: deque[tuple[float, int]] = deque()  # (grant time, lease id), oldest first
        self._permits: dict[int, int] = {}  # lease id -> permits still counted
        self._used = 0
        self._blocked_until = 0.0
        self._app_pct: float | None = None
        self._leases = self._granted = self._returned = self._refusals = self._blocks = 0

    def lease(self, want: int, *, returned: tuple[int, int] | None = None) -> LeaseGrant:
        """Grant at least `want` permits (more up to the lease size when the app is cool), or
        none and how long to wait; `returned` is (lease id, permits) the caller did not spend."""
        now = self._clock()
        self._prune(now)
        if returned is not None:
            self._give_back(*returned)
        if want <= 0:
            return LeaseGrant(0, 0, 0.0, 0.0)
        if now < self._blocked_until:
            return self._refuse(self._blocked_until - now)
        hot = self._app_pct is not None and self._app_pct >= self._slow_down_at
        size = want if hot else max(want, self._lease_size)
        if self._capacity is not None:
            # A call costing more than the whole budget can never fit: it gets the whole budget.
            want = min(want, self._capacity)
            room = self._capacity - self._used
            if room < want:
                return self._refuse(self._until_room(now, want - room))
            size = min(size, room)
        lease_id = next(self._ids)
        self._grants.append((now, lease_id))
        self._permits[lease_id] = size
        self._used += size
        self._leases += 1
        self._granted += size
        return LeaseGrant(lease_id, size, self._ttl, 0.0)

    def observe(self, app_pct: float) -> None:
        """Meta's latest app usage, as any shard saw it: from the slow-down mark leases shrink
        to what each call needs, so every shard paces call by call."""
        self._app_pct = app_pct

    def block(self, seconds: float) -> None:
        """Meta throttled the app: no shard gets a permit for `seconds`."""
        until = self._clock() + seconds
        if until > self._blocked_until:
            self._blocked_until = until
            self._blocks += 1

    def statistics(self) -> BudgetStatistics:
        return BudgetStatistics(
            self._leases,
            self._granted,
            self._returned,
            self._refusals,
            self._app_pct,
            self._blocks,
        )

    def _give_back(self, lease_id: int, permits: int) -> None:
        held = self._permits.get(lease_id)
        if held is None:  # the lease already left the window
            return
        back = min(permits, held)
        self._permits[lease_id] = held - back
        self._used -= back
        self._returned += back

    def _refuse(self, wait: float) -> LeaseGrant:
        self._refusals += 1
        return LeaseGrant(0, 0, 0.0, wait)

    def _expiry(self, granted_at: float) -> float:
        return granted_at + self._ttl + self._window * WINDOW_MARGIN

    def _prune(self, now: float) -> None:
        while self._grants and self._expiry(self._grants[0][0]) <= now:
            _, lease_id = self._grants.popleft()
            self._used -= self._permits.pop(lease_id)

    def _until_room(self, now: float, missing: int) -> float:
        """Seconds until the oldest leases leaving the window free `missing` permits."""
        freed = 0
        for granted_at, lease_id in self._grants:
            freed += self._permits[lease_id]
            if freed >= missing:
                return max(self._expiry(granted_at) - now, 0.0)
        return self._ttl  # only returns of live leases can free the rest


Lease = Callable[[int, tuple[int, int] | None], Awaitable[LeaseGrant]]


class LeasedPermits:
    """A shard's `AppPermits`: spends leases from a shared `AppBudget` (see the module docstring).

    `lease(want, returned)` asks the budget; `observe` and `block` pass Meta's word on to it (fire
    and forget: the shard's own gate already acts on it, the others learn on their next lease).
    """

    def __init__(
        self,
        lease: Lease,
        observe: Callable[[float], None],
        block: Callable[[float], None],
        *,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._lease = lease
        self._observe = observe
        self._block = block
        self._clock = clock
        self._sleep = sleep
        self._lease_id = 0
        self._left = 0
        self._expires = 0.0
        self._seen_pct: float | None = None
        self._lock = anyio.Lock()

    async def acquire(self, n: int) -> None:
        # One request to the budget at a time: callers queue here and share what it brings.
        async with self._lock:
            while self._left < n or self._clock() >= self._expires:
                returned = (self._lease_id, self._left) if self._left else None
                self._left = 0
                asked_at = self._clock()
                grant = await self._lease(n, returned)
                if grant.permits == 0:
                    await self._sleep(grant.wait)
                    continue
                # Counted from the request, not the reply: the budget stamped it in between.
                self._lease_id, self._left = grant.lease_id, grant.permits
                self._expires = asked_at + grant.ttl
                n = min(n, grant.permits)  # a call dearer than the whole budget takes all of it
            self._left -= n

    def observe(self, app_pct: float) -> None:
        if app_pct != self._seen_pct:  # every reply carries it; only news is worth a message
            self._seen_pct = app_pct
            self._observe(app_pct)

    def block(self, seconds: float) -> None:
        self._block(seconds)

    async def release(self) -> None:
        """Give the unspent rest of the lease back (the shard is done)."""
        async with self._lock:
            if self._left and self._clock() < self._expires:
                await self._lease(0, (self._lease_id, self._left))
            self._left = 0
