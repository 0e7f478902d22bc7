"""Call budgets (app, token, Instagram Business Use Case) over sliding windows, and usage headers.

Meta's rules kept: every call counts (each batch op too), usage is reported as whole percentages
in `X-App-Usage` and `X-Business-Use-Case-Usage`, and calls made while blocked extend the block.
A rejected call does not consume budget, so a client that waits out the block recovers.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import orjson

from harvester.simulator import replies
from harvester.simulator.settings import LimitSettings


class _Window:
    __slots__ = ("blocked_until", "budget", "calls", "rejected", "rejected_while_blocked")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.calls: deque[float] = deque()
        self.blocked_until = 0.0
        self.rejected = 0
        # Calls that arrived during a block (each extends it): what a well-behaved client avoids.
        self.rejected_while_blocked = 0

    def prune(self, now: float, window: float) -> None:
        calls = self.calls
        while calls and calls[0] <= now - window:
            calls.popleft()

    def admits(self, now: float, limits: LimitSettings) -> bool:
        """False when this scope rejects the call; a rejected call pushes the block further."""
        if now < self.blocked_until:
            self.blocked_until += limits.block_extension_minutes * limits.minute_seconds
            self.rejected += 1
            self.rejected_while_blocked += 1
            return False
        self.prune(now, limits.window_seconds)
        if len(self.calls) >= self.budget:
            # Blocked until the oldest call in the window expires and frees one slot.
            self.blocked_until = max(self.calls[0] + limits.window_seconds, now + 1e-3)
            self.rejected += 1
            return False
        return True

    def percent(self, now: float, window: float) -> int:
        self.prune(now, window)
        pct = (100 * len(self.calls)) // self.budget
        return max(pct, 100) if now < self.blocked_until else pct


class RateLimiter:
    """Decides whether a call is within budget and renders the usage headers Meta sends."""

    def __init__(self, limits: LimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._app = _Window(limits.app_budget) if limits.app_budget is not None else None
        self._accounts: dict[str, _Window] = {}
        self._tokens: dict[str, _Window] = {}
        self._idle_buc: dict[str, str] = {}

    def charge(self, account_id: str | None, token_hash: str | None) -> None:
        """Count one call, or raise the rate-limit GraphError (4, 17 or 80002) of the scope."""
        limits = self.limits
        if not limits.enabled:
            return
        now = self._clock()
        app = self._app
        if app is not None and not app.admits(now, limits):
            raise replies.rate_app()
        tok = None
        if limits.token_budget is not None and token_hash is not None:
            tok = self._tokens.get(token_hash)
            if tok is None:
                tok = self._tokens[token_hash] = _Window(limits.token_budget)
            if not tok.admits(now, limits):
                raise replies.rate_user()
        acc = None
        if limits.account_budget is not None and account_id is not None:
            acc = self._account(account_id)
            if not acc.admits(now, limits):
                raise replies.rate_account()
        for scope in (app, tok, acc):
            if scope is not None:
                scope.calls.append(now)

    @property
    def blocked_rejections(self) -> int:
        """Calls rejected because they arrived while their scope was already blocked."""
        windows = [self._app, *self._tokens.values(), *self._accounts.values()]
        return sum(w.rejected_while_blocked for w in windows if w is not None)

    def _account(self, account_id: str) -> _Window:
        win = self._accounts.get(account_id)
        if win is None:
            assert self.limits.account_budget is not None
            win = self._accounts[account_id] = _Window(self.limits.account_budget)
        return win

    def app_usage(self) -> str:
        pct = 0
        if self._app is not None:
            pct = self._app.percent(self._clock(), self.limits.window_seconds)
        return f'{{"call_count":{pct},"total_cputime":{pct // 3},"total_time":{pct // 2}}}'

    def business_usage(self, account_id: str | None) -> str:
        """The BUC header, keyed by the ig-user-id; `{}` when the call touched no account."""
        if account_id is None:
            return "{}"
        limits = self.limits
        if limits.account_budget is None:
            cached = self._idle_buc.get(account_id)
            if cached is None:
                cached = self._buc(account_id, 0, 0)
                self._idle_buc[account_id] = cached
            return cached
        now = self._clock()
        win = self._account(account_id)
        pct = win.percent(now, limits.window_seconds)
        regain = 0
        if now < win.blocked_until:
            regain = math.ceil((win.blocked_until - now) / limits.minute_seconds)
        return self._buc(account_id, pct, regain)

    @staticmethod
    def _buc(account_id: str, pct: int, regain: int) -> str:
        entry = {
            "type": "instagram",
            "call_count": pct,
            "total_cputime": pct // 3,
            "total_time": pct // 2,
            "estimated_time_to_regain_access": regain,
        }
        return orjson.dumps({account_id: [entry]}).decode()

    def account_blocked_until(self, account_id: str) -> float:
        """Monotonic time the account's block ends (0 when never blocked); for tests and stats."""
        win = self._accounts.get(account_id)
        return 0.0 if win is None else win.blocked_until
