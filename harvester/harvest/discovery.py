"""Stage: a user token -> the Instagram professional accounts of every Page it manages.

Agencies get access to hundreds of Pages and cannot list each linked Instagram account by hand.
`me/accounts` pages through the token's Pages; a Page without a linked Instagram professional
account simply lacks `instagram_business_account`, so it is reported (an `errors` row, stage
`discovery`) and skipped. A discovered account reads with its Page's token when Meta returns one
(Page tokens made from a long-lived user token do not expire), else with the discovery token.
Accounts listed in the config win over discovered ones with the same id: their token was chosen on
purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harvester.config import Config, DiscoverySettings
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, MalformedReply
from harvester.harvest.rows import RunRows, Stage
from harvester.models import Account, Rows, Secret

PAGE_FIELDS = "id,name,access_token,instagram_business_account{id,username}"
# The pseudo account discovery calls are made as; its id is the rate gate's scope for them.
DISCOVERY_SCOPE = "me"


class PageWithoutAccount(Exception):
    """A Page the token manages that has no linked Instagram professional account."""


@dataclass(frozen=True)
class Discovery:
    accounts: tuple[Account, ...]
    # (page id, page name) of every Page without a linked Instagram professional account.
    pages_without_account: tuple[tuple[str, str | None], ...]
    pages_seen: int


async def discover_accounts(client: GraphClient, settings: DiscoverySettings) -> Discovery:
    """Every Instagram account linked to a Page of the discovery token (all pages of the edge)."""
    if settings.token is None:
        raise ValueError("discovery has no token ([discovery].token_env is unset)")
    caller = Account(DISCOVERY_SCOPE, settings.token_env or "", settings.token)
    params = {"fields": PAGE_FIELDS, "limit": str(settings.page_size)}
    found: dict[str, Account] = {}
    orphans: list[tuple[str, str | None]] = []
    seen = 0
    async for batch in client.paginate("me/accounts", params, account=caller):
        for page in batch:
            seen += 1
            page_id, name, account = _read_page(page, settings)
            if account is None:
                orphans.append((page_id, name))
            else:
                found.setdefault(account.id, account)
    return Discovery(tuple(found.values()), tuple(orphans), seen)


def _read_page(page: Any, settings: DiscoverySettings) -> tuple[str, str | None, Account | None]:
    if not isinstance(page, dict) or not isinstance(page.get("id"), str):
        raise MalformedReply(f"me/accounts item without an id: {page!r:.80}")
    page_id: str = page["id"]
    name = page.get("name") if isinstance(page.get("name"), str) else None
    linked = page.get("instagram_business_account")
    if linked is None:
        return page_id, name, None
    if not isinstance(linked, dict) or not isinstance(linked.get("id"), str):
        raise MalformedReply(f"page {page_id}: instagram_business_account without an id")
    page_token = page.get("access_token")
    env = settings.token_env or ""
    if isinstance(page_token, str) and page_token:
        account = Account(linked["id"], f"{env} (page {page_id})", Secret(page_token))
    else:
        assert settings.token is not None
        account = Account(linked["id"], env, settings.token)
    return page_id, name, account


def merge_accounts(listed: Iterable[Account], discovered: Iterable[Account]) -> tuple[Account, ...]:
    """Listed accounts first, then discovered ones not listed; no id appears twice."""
    out: dict[str, Account] = {}
    for account in listed:
        out.setdefault(account.id, account)
    for account in discovered:
        out.setdefault(account.id, account)
    return tuple(out.values())


async def discover_into(
    client: GraphClient, config: Config, rows: RunRows
) -> tuple[tuple[Account, ...], list[Rows]]:
    """The run's accounts (listed + discovered) and the error rows discovery has to report.

    A failed discovery does not fail the run: the listed accounts are still harvested, and the
    failure is an error row.
    """
    try:
        found = await discover_accounts(client, config.discovery)
    except GraphError as error:
        return config.accounts, [rows.error_block(None, "me/accounts", Stage.DISCOVERY, error)]
    errors = []
    for page_id, name in found.pages_without_account:
        label = f"page {page_id}" + (f" ({name})" if name else "")
        problem = PageWithoutAccount(
            f"{label} has no linked Instagram professional account; skipped"
        )
        errors.append(rows.error(None, page_id, Stage.DISCOVERY, problem))
    blocks = [rows.errors(errors)] if errors else []
    return merge_accounts(config.accounts, found.accounts), blocks


__all__ = [
    "Discovery",
    "PageWithoutAccount",
    "discover_accounts",
    "discover_into",
    "merge_accounts",
]
