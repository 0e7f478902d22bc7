"""Health: does anything work? Watches every attempt's outcome and decides when a run must stop.

A dead endpoint (a host that does not resolve, a refused port, a server answering only 5xx) or
an app-wide misconfiguration (an `api_version` Meta does not serve, a wrong app secret) fails
every request the same way. The retry policy alone would spend its budget on each of them, per
account, for minutes. The watch stops that:

- while no request of the run has succeeded, and every failure so far had one and the same
  `Cause`, the run is "nothing works" once `fail_fast_seconds` have passed since the first
  attempt, or as soon as `CERTAIN_AFTER` attempts failed with a non-retriable cause (a wrong
  version or secret does not heal by waiting);
- a timeout or reset fits any of the connection causes and never decides between them;
- one success, or one failure that shows the endpoint answering (a refused metric, a throttle,
  a malformed page), disarms the watch for the run: a partial outage is the retry policy's job;
- an account's own token or permission failure says nothing about the endpoint and is neutral.

The watch also remembers, per account, whether any of its requests succeeded: the run report
counts an account none of whose requests succeeded as failed. Pure logic with an injected clock;
the client feeds it and raises the `NothingWorks` it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from harvester.graph.errors import (
    AccountFatal,
    AppSecretRejected,
    GraphError,
    NothingWorks,
    ProfileUnavailable,
    TransientServer,
    TransportError,
    UnknownVersion,
)

__all__ = [
    "CERTAIN_AFTER",
    "Cause",
    "HealthStatistics",
    "HealthWatch",
    "cause_of",
    "describe",
]

# Failed attempts of one non-retriable cause, and nothing else, after which the run stops without
# waiting out `fail_fast_seconds`: one reply could be one account's oddity, three agreeing ones
# with no success in between are the app's (and each one is an account lost anyway).
CERTAIN_AFTER = 3


class Cause(StrEnum):
    """The ways in which every request of a run can fail alike."""

    DNS = "dns"  # the host does not resolve
    REFUSED = "refused"  # connection refused or host unreachable
    SERVER = "server"  # only 5xx replies or transport failures (timeouts, resets, drops)
    VERSION = "version"  # Meta does not serve the configured api_version
    APP_SECRET = "app_secret"  # Meta rejects the appsecret_proof: the app secret is wrong


NON_RETRIABLE = frozenset({Cause.VERSION, Cause.APP_SECRET})
CONNECTION = frozenset({Cause.DNS, Cause.REFUSED, Cause.SERVER})


def cause_of(error: BaseException) -> Cause | None:
    """The app-wide cause a failed attempt shows, None when it shows none (the endpoint
    answered something meaningful, or only one account's token failed)."""
    if isinstance(error, NothingWorks):
        return next((c for c in Cause if c.value == error.cause), None)
    if isinstance(error, TransportError):
        if error.reason == "dns":
            return Cause.DNS
        if error.reason == "refused":
            return Cause.REFUSED
        return Cause.SERVER
    if isinstance(error, TransientServer):
        return Cause.SERVER
    if isinstance(error, UnknownVersion):
        return Cause.VERSION
    if isinstance(error, AppSecretRejected):
        return Cause.APP_SECRET
    return None


def describe(cause: Cause, *, host: str, api_version: str, status: int | None = None) -> str:
    """A short, secret-free phrase naming the cause (`harvester check` shows it per account)."""
    if cause is Cause.DNS:
        return f"host unreachable ({host}: DNS)"
    if cause is Cause.REFUSED:
        return f"host unreachable ({host}: refused)"
    if cause is Cause.SERVER:
        return f"server error (HTTP {status})" if status is not None else "server error (no reply)"
    if cause is Cause.VERSION:
        return f"unknown API version ({api_version})"
    return "wrong app secret"


def _vague(error: BaseException) -> bool:
    """A transport failure that does not say whether the host or the server is at fault."""
    return isinstance(error, TransportError) and error.reason == "other"


def _neutral(error: BaseException) -> bool:
    """An account's own token or permission failure: the endpoint works, that token does not."""
    return isinstance(error, AccountFatal) and not isinstance(error, AppSecretRejected)


class HealthStatistics(NamedTuple):
    attempts: int
    failures: int
    armed: bool  # False once a success or a sign of life ruled "nothing works" out for the run
    cause: str | None  # the one cause every failure so far had
    stopped: bool


class HealthWatch:
    """Watches the outcomes of a run's requests (anyio tasks on one thread share it).

    `fail_fast_seconds` 0 disables the decision (the per-account record stays). `host` and
    `api_version` only word the message: `host` is the one a failure names unless the caller
    says on which host it failed (a run's Instagram Login accounts go to graph.instagram.com).
    """

    def __init__(
        self,
        fail_fast_seconds: float,
        *,
        host: str,
        api_version: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = fail_fast_seconds
        self._host = host
        self._api_version = api_version
        self._clock = clock
        self._armed = fail_fast_seconds > 0
        self._first: float | None = None
        self._cause: Cause | None = None
        self._tentative = False  # the cause so far rests on vague transport failures only
        self._cause_failures = 0
        self._hosts: dict[str, None] = {}  # where the failures of the cause happened, in order
        self._status: int | None = None
        self._attempts = 0
        self._failures = 0
        self._stopped = False
        self._answered: set[str] = set()
        self._unanswered: dict[str, GraphError] = {}

    def attempting(self) -> None:
        """An attempt is about to go: the wait counts from the run's first one."""
        if self._first is None:
            self._first = self._clock()

    def succeeded(self, account_id: str) -> None:
        """An attempt for `account_id` got a good reply."""
        self._attempts += 1
        self._armed = False
        self._answered.add(account_id)
        self._unanswered.pop(account_id, None)

    def failed(
        self, account_id: str, error: GraphError, host: str | None = None
    ) -> NothingWorks | None:
        """An attempt for `account_id` failed with `error` (on `host`, if not the default); the
        NothingWorks to raise instead when this failure decides that nothing works (or it was
        decided before)."""
        self._attempts += 1
        self._failures += 1
        # An unknown competitor's username is about the competitor: the asking account's token
        # worked, so it does not make that account failed (one that is done, in a resumed run).
        if account_id not in self._answered and not isinstance(error, ProfileUnavailable):
            self._unanswered[account_id] = error
        now = self._clock()
        if self._first is None:
            self._first = now
        if _neutral(error):
            return None  # even once stopped: this reply is news about one account's token
        if self._stopped:
            return self.stopped()
        if not self._armed:
            return None
        cause = cause_of(error)
        if cause is None:
            self._armed = False  # the endpoint answered: not "nothing works"
            return None
        if _vague(error):
            # A timeout or reset fits a host that does not resolve or answer as well as a dead
            # server: it never decides the cause, and counts towards a connection cause only.
            if self._cause is None:
                self._cause, self._tentative = Cause.SERVER, True
            elif self._cause not in CONNECTION:
                return None
        elif self._cause is None or self._tentative:
            self._cause, self._tentative = cause, False
        elif cause is not self._cause:
            self._armed = False  # failures differ: not "nothing works"
            return None
        self._cause_failures += 1
        self._hosts[host or self._host] = None
        if error.status is not None:
            self._status = error.status
        waited = now - self._first
        certain = cause in NON_RETRIABLE and self._cause_failures >= CERTAIN_AFTER
        if waited >= self._limit or certain:
            self._stopped = True
            return self.stopped()
        return None

    def stopped(self) -> NothingWorks | None:
        """A fresh NothingWorks for each caller once the run is stopped (tasks raising one
        instance at once would tangle its traceback), else None."""
        if not self._stopped or self._cause is None:
            return None
        hosts = ", ".join(self._hosts) or self._host
        what = describe(self._cause, host=hosts, api_version=self._api_version, status=self._status)
        where = "" if self._cause in (Cause.DNS, Cause.REFUSED) else f" at {hosts}"
        message = (
            f"nothing works: {what}{where}; all {self._cause_failures} requests so far failed "
            "alike, none succeeded"
        )
        return NothingWorks(message, cause=self._cause.value, host=hosts, reason=what)

    def explain(self, error: BaseException, host: str | None = None) -> str | None:
        """The `describe` phrase for an error with an app-wide cause (None: it has none), met on
        `host` if not the default."""
        if isinstance(error, NothingWorks):
            return error.reason or None
        cause = cause_of(error)
        if cause is None:
            return None
        status = error.status if isinstance(error, GraphError) else None
        return describe(
            cause, host=host or self._host, api_version=self._api_version, status=status
        )

    def unanswered(self, account_id: str) -> GraphError | None:
        """The last error of an account none of whose requests succeeded (None: one did, or
        none was made)."""
        return self._unanswered.get(account_id)

    def statistics(self) -> HealthStatistics:
        cause = self._cause.value if self._cause is not None else None
        return HealthStatistics(self._attempts, self._failures, self._armed, cause, self._stopped)
