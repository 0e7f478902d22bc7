"""Instagram Login (graph.instagram.com): whose token is it, is it usable, and keeping it alive.

An Instagram User token names exactly one account, which `GET /me?fields=user_id,username`
reports (`user_id` is the professional account id the Graph uses; `id` is app-scoped). A config
id that differs would harvest another account's data under the wrong id, so the account stops
with `WrongAccount` before any other call. `debug_token` and `me/permissions` are unconfirmed
on that host: preflight asks `me/permissions` and says so when it is not answered.

`refresh_tokens` renews every due Instagram Login token (at least 24 hours old and not expired)
and writes it back into its `token_file` (`graph.token_store`); a token from an environment
variable cannot be written back, and the outcome says how to move it into a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio

from harvester.config import Config
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, MalformedReply, WrongAccount
from harvester.graph.token_store import REFRESH_MIN_AGE, TokenRecord, read_record, write_token
from harvester.models import Account, Secret

# What an Instagram Login token needs for insights (graph-api-notes: Instagram Login).
INSTAGRAM_PERMISSIONS = ("instagram_business_basic", "instagram_business_manage_insights")
# Tokens refreshed at once: a handful, refreshes are rare and each is one call.
REFRESHES_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class Identity:
    """What `/me` says a token belongs to."""

    user_id: str
    username: str | None


async def whoami(client: GraphClient, account: Account) -> Identity:
    reply = await client.get("me", {"fields": "user_id,username"}, account=account)
    user_id = reply.get("user_id") if isinstance(reply, dict) else None
    if isinstance(user_id, int):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise MalformedReply("me: a reply without user_id")
    username = reply.get("username")
    return Identity(user_id, username if isinstance(username, str) else None)


async def confirm_account(client: GraphClient, account: Account) -> Identity:
    """The token's account, after checking it is the configured one; raises `WrongAccount`
    (and closes the account in the client) when it is not."""
    identity = await whoami(client, account)
    if identity.user_id != account.id:
        named = f" (@{identity.username})" if identity.username else ""
        error = WrongAccount(
            f"the Instagram Login token belongs to account {identity.user_id}{named}, not to "
            f"the configured id {account.id}: fix the id or the token"
        )
        client.close_account(account, error)
        raise error
    return identity


@dataclass(frozen=True, slots=True)
class InstagramCheck:
    """Preflight of one Instagram Login token (see `graph.tokens.check_account`)."""

    identity: Identity | None
    granted: frozenset[str] | None  # None: Meta did not report permissions
    note: str | None
    expires_at: datetime | None


async def check_instagram(client: GraphClient, account: Account) -> InstagramCheck:
    """`/me` (raises GraphError on a dead token, WrongAccount on another account's), then
    `me/permissions` where the host answers it, and the expiry the token file's record holds."""
    identity = await confirm_account(client, account)
    granted: frozenset[str] | None = None
    note = None
    try:
        reply = await client.get("me/permissions", {}, account=account)
        items = reply.get("data") if isinstance(reply, dict) else None
        if isinstance(items, list):
            granted = frozenset(
                item["permission"]
                for item in items
                if isinstance(item, dict)
                and isinstance(item.get("permission"), str)
                and item.get("status") == "granted"
            )
        else:
            note = "me/permissions reply without a data list; permissions not checked"
    except GraphError as error:
        if client.closed(account.id) is not None:
            raise
        note = f"permissions not reported by graph.instagram.com ({error.message})"
    record = read_record(account.token_file) if account.token_file else None
    return InstagramCheck(identity, granted, note, record.expires_at if record else None)


Outcome = Literal["refreshed", "not due", "failed"]


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """One account's refresh: what happened, the new expiry, and a token-free explanation."""

    account_id: str
    outcome: Outcome
    detail: str
    expires_at: datetime | None = None


def parse_refresh(reply: Any, now: datetime) -> tuple[Secret, datetime]:
    """(new token, its expiry) from Meta's `{"access_token", "token_type", "expires_in"}`."""
    token = reply.get("access_token") if isinstance(reply, dict) else None
    seconds = reply.get("expires_in") if isinstance(reply, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise MalformedReply("refresh_access_token: a reply without access_token")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        raise MalformedReply("refresh_access_token: a reply without a positive expires_in")
    return Secret(token.strip()), now + timedelta(seconds=seconds)


async def refresh_account(client: GraphClient, account: Account, now: datetime) -> RefreshResult:
    """Refresh one account's token if it is due, writing it back into its token file."""
    if account.login != "instagram":
        return RefreshResult(account.id, "not due", "Facebook Login: nothing to refresh")
    if account.token_file is None:
        return RefreshResult(
            account.id,
            "failed",
            f"its token comes from the environment variable {account.token_env}, which the "
            "harvester cannot write back; put the token in a file (chmod 600) and set "
            f'token_file = "<file>" instead of token_env = "{account.token_env}"',
        )
    record = read_record(account.token_file)
    if record is None:
        return RefreshResult(account.id, "failed", f"token file {account.token_file} is gone")
    if record.expires_at is not None and record.expires_at <= now:
        return RefreshResult(
            account.id,
            "failed",
            f"the token expired at {_when(record.expires_at)}; get a new one (Instagram Login)",
            record.expires_at,
        )
    age = now - record.refreshed_at
    if age < REFRESH_MIN_AGE:
        hours = max(age.total_seconds(), 0) / 3600
        return RefreshResult(
            account.id,
            "not due",
            f"refreshed {hours:.1f} h ago; Meta refreshes tokens at least 24 h old",
            record.expires_at,
        )
    try:
        token, expires_at = parse_refresh(await client.refresh_instagram_token(account), now)
    except GraphError as error:
        # The token file was not touched: the old token stays as it was.
        return RefreshResult(account.id, "failed", f"Meta refused: {error.message}")
    await anyio.to_thread.run_sync(
        write_token, account.token_file, token, TokenRecord(now, expires_at, True)
    )
    return RefreshResult(account.id, "refreshed", f"expires {_when(expires_at)}", expires_at)


async def refresh_tokens(
    config: Config, accounts: Sequence[Account], *, now: datetime | None = None
) -> list[RefreshResult]:
    """Refresh each of `accounts` that is due, in their order."""
    now = now or datetime.now(UTC)
    results: list[RefreshResult | None] = [None] * len(accounts)
    limiter = anyio.CapacityLimiter(REFRESHES_IN_FLIGHT)

    async def one(index: int, account: Account) -> None:
        async with limiter:
            results[index] = await refresh_account(client, account, now)

    client = GraphClient(config.graph, config.limits, config.retry)
    async with client, anyio.create_task_group() as tg:
        for index, account in enumerate(accounts):
            tg.start_soon(one, index, account)
    return [r for r in results if r is not None]


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = [
    "INSTAGRAM_PERMISSIONS",
    "Identity",
    "InstagramCheck",
    "RefreshResult",
    "check_instagram",
    "confirm_account",
    "parse_refresh",
    "refresh_account",
    "refresh_tokens",
    "whoami",
]
