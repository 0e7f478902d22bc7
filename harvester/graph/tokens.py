"""Preflight (`harvester check`): is each account's token usable, before an hour-long run finds out?

Per account: `GET /debug_token?input_token=<token>` says whether the token is valid and when it
expires; `GET /me/permissions` says which permissions were granted (debug_token's `scopes` stand
in when that edge is refused, e.g. for a Page token). An account is unusable when its token is
invalid or lacks a permission insights need; a token expiring within `WARN_DAYS` is a warning.
Each check is made with the account's own token, as Meta allows; an expired token then fails the
call itself with 190, which is the answer we need.

An Instagram Login token is checked on its own host (`graph.instagram`): `/me` says whether it
is valid and whose it is, permissions are those Meta reports there (if it does), and the expiry
is what its token file's record says (unknown for a token from the environment).

When the check cannot reach the token at all, the status names what stopped it instead (the
`graph.health` phrases): host unreachable (DNS or refused), server error (HTTP status), unknown
API version, wrong app secret; the token's own problems read token invalid, token expired,
missing permission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from harvester.config import Config
from harvester.graph.client import GraphClient
from harvester.graph.errors import (
    GraphError,
    MalformedReply,
    PermissionDenied,
    TokenInvalid,
    WrongAccount,
)
from harvester.graph.instagram import INSTAGRAM_PERMISSIONS, check_instagram
from harvester.models import Account

REQUIRED_PERMISSIONS = ("instagram_basic", "instagram_manage_insights", "pages_read_engagement")
WARN_DAYS = 7
# Accounts checked at once: two calls each, a small burst even for thousands of accounts.
CHECKS_IN_FLIGHT = 8


@dataclass(frozen=True)
class TokenCheck:
    """What preflight learned about one account's token."""

    account_id: str
    token_env: str
    valid: bool | None  # None: not known, the endpoint or the app failed before the token did
    expires_at: datetime | None  # None: never expires (or Meta did not say)
    missing: tuple[str, ...]
    problem: str | None = None  # Meta's words on why the token is invalid, or on permissions
    now: datetime | None = None
    # What makes the account unusable, other than missing permissions: "token invalid", "token
    # expired", "missing permission", or what stopped the check ("wrong app secret", ...).
    cause: str | None = None
    expiry_known: bool = True  # False: Meta says nothing of it and no token file record does

    @property
    def days_left(self) -> float | None:
        if self.expires_at is None:
            return None
        now = self.now or datetime.now(UTC)
        return (self.expires_at - now).total_seconds() / 86_400

    @property
    def usable(self) -> bool:
        return self.valid is True and not self.missing

    @property
    def status(self) -> str:
        if self.valid is None:
            return f"UNUSABLE: {self.cause or 'not checked'}"
        if not self.valid:
            said = f" ({self.problem})" if self.problem else ""
            return f"UNUSABLE: {self.cause or 'token invalid'}{said}"
        if self.missing:
            return "UNUSABLE: missing " + ", ".join(self.missing)
        days = self.days_left
        if days is not None and days < WARN_DAYS:
            return f"WARN: token expires in {max(days, 0):.1f} days"
        return "OK"


async def check_account(client: GraphClient, account: Account, *, now: datetime) -> TokenCheck:
    if account.login == "instagram":
        return await _check_instagram_login(client, account, now=now)
    token = account.token.reveal()
    try:
        info = await client.get("debug_token", {"input_token": token}, account=account)
        data = _data(info)
    except GraphError as error:
        valid, cause = _cause(client, account, error)
        problem = None if valid is None else _text(error)
        return TokenCheck(account.id, account.token_env, valid, None, (), problem, now, cause)
    expires = data.get("expires_at")
    expires_at = (
        datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) and expires > 0 else None
    )
    if data.get("is_valid") is not True:
        said = data.get("error")
        problem = said.get("message") if isinstance(said, dict) else "Meta says is_valid=false"
        subcode = said.get("subcode") if isinstance(said, dict) else None
        cause = "token expired" if _expired(subcode, problem) else "token invalid"
        return TokenCheck(account.id, account.token_env, False, expires_at, (), problem, now, cause)
    granted, problem = await _granted(client, account, data)
    missing = tuple(p for p in REQUIRED_PERMISSIONS if p not in granted)
    return TokenCheck(account.id, account.token_env, True, expires_at, missing, problem, now)


async def _check_instagram_login(
    client: GraphClient, account: Account, *, now: datetime
) -> TokenCheck:
    source = _source(account)
    try:
        found = await check_instagram(client, account)
    except WrongAccount as error:
        return TokenCheck(account.id, source, False, None, (), error.message, now, "wrong account")
    except GraphError as error:
        valid, cause = _cause(client, account, error)
        problem = None if valid is None else _text(error)
        return TokenCheck(
            account.id, source, valid, None, (), problem, now, cause, expiry_known=False
        )
    granted = found.granted
    missing = () if granted is None else tuple(p for p in INSTAGRAM_PERMISSIONS if p not in granted)
    return TokenCheck(
        account.id,
        source,
        True,
        found.expires_at,
        missing,
        found.note,
        now,
        expiry_known=found.expires_at is not None,
    )


def _source(account: Account) -> str:
    return account.token_env if account.token_file is None else f"file {account.token_file}"


async def _granted(
    client: GraphClient, account: Account, data: dict[str, Any]
) -> tuple[set[str], str | None]:
    scopes = data.get("scopes")
    fallback = {s for s in scopes if isinstance(s, str)} if isinstance(scopes, list) else set()
    try:
        reply = await client.get("me/permissions", {}, account=account)
    except GraphError as error:
        return fallback, f"me/permissions refused ({_text(error)}); used debug_token scopes"
    items = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(items, list):
        return fallback, "me/permissions reply without a data list; used debug_token scopes"
    granted = {
        item["permission"]
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("permission"), str)
        and item.get("status") == "granted"
    }
    return granted, None


def _data(reply: object) -> dict[str, Any]:
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, dict):
        raise MalformedReply(f"debug_token reply without a data object: {reply!r:.80}")
    return data


def _cause(client: GraphClient, account: Account, error: GraphError) -> tuple[bool | None, str]:
    """(valid, cause) for a check that failed with `error`: valid is None when the endpoint or
    the app failed, not the token (so the token is untested)."""
    if (phrase := client.health.explain(error, client.host_of(account))) is not None:
        return None, phrase
    if isinstance(error, TokenInvalid):
        return False, "token expired" if _expired(error.subcode, error.message) else "token invalid"
    if isinstance(error, PermissionDenied):
        return False, "missing permission"
    return None, f"not checked ({type(error).__name__}: {_text(error)})"


def _expired(subcode: object, message: str | None) -> bool:
    # 190/463 is Meta's "Session has expired"; debug_token words it in its error message.
    return subcode == 463 or "expired" in (message or "").lower()


def _text(error: BaseException) -> str:
    return error.message if isinstance(error, GraphError) else str(error)


async def run_preflight(config: Config, *, now: datetime | None = None) -> list[TokenCheck]:
    """Check every listed account, in config order."""
    now = now or datetime.now(UTC)
    results: list[TokenCheck | None] = [None] * len(config.accounts)
    limiter = anyio.CapacityLimiter(CHECKS_IN_FLIGHT)

    async def check(index: int, account: Account) -> None:
        async with limiter:
            results[index] = await check_account(client, account, now=now)

    client = GraphClient(config.graph, config.limits, config.retry)
    async with client, anyio.create_task_group() as tg:
        for index, account in enumerate(config.accounts):
            tg.start_soon(check, index, account)
    return [r for r in results if r is not None]


def _expires_in(check: TokenCheck, days: float | None) -> str:
    if days is not None:
        return f"{days:.1f} d"
    if not check.expiry_known:
        return "unknown"
    return "never" if check.valid else "-"


def render_table(checks: Sequence[TokenCheck]) -> str:
    """A plain-text table, one line per account, for terminals and logs alike."""
    header = ("account", "token_env", "valid", "expires in", "missing permissions", "status")
    lines = [header]
    for c in checks:
        days = c.days_left
        lines.append(
            (
                c.account_id,
                c.token_env,
                "?" if c.valid is None else "yes" if c.valid else "no",
                _expires_in(c, days),
                ", ".join(c.missing) or "-",
                c.status,
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    out = []
    for row in lines:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.append("  ".join([*cells, row[-1]]))
    return "\n".join(out)


__all__ = [
    "REQUIRED_PERMISSIONS",
    "WARN_DAYS",
    "TokenCheck",
    "check_account",
    "render_table",
    "run_preflight",
]
