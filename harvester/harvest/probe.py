"""The catalogue checks itself: ask Meta for its list of valid metrics and compare it with ours.

Meta answers a metric name it does not know with code 100 and the list of names it accepts
("metric[0] must be one of the following values: ..."). So one request with a name that cannot
exist, on one media of each kind and on the account, tells what Meta offers at the configured
version: the probe prints which of those the catalogue lacks, and which metrics the catalogue
would ask that Meta no longer lists. A handful of calls with the first usable token of a config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harvester.catalog import (
    ApiVersion,
    Catalog,
    Login,
    MediaKind,
    load_catalog,
    media_kind,
)
from harvester.config import Config, ConfigError
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError, MalformedReply, MetricUnsupported, NothingWorks
from harvester.graph.replies import parse_media
from harvester.models import Account, Media

__all__ = [
    "ACCOUNT_SCOPE",
    "PROBE_METRIC",
    "KindProbe",
    "ProbeReport",
    "catalogue_names",
    "probe_catalog",
]

# A name no version of the API has: Meta can only answer it with its list.
PROBE_METRIC = "harvester_probe_no_such_metric"
# The scope beside the media kinds under which account insights are compared.
ACCOUNT_SCOPE = "ACCOUNT"
# Media listed per account, in one page: enough to meet every feed kind of an active account.
MEDIA_PAGE = 25
# Accounts (with a usable token) whose media are listed at most, looking for kinds not met yet:
# each costs two calls (media and stories), so the probe stays a handful of calls.
MAX_ACCOUNTS = 3
# Media of one kind asked at most: a deleted or unreadable one answers without the list.
TRIES_PER_KIND = 2
_FIELDS = "id,media_type,media_product_type"


@dataclass(frozen=True, slots=True)
class KindProbe:
    """What Meta listed for one kind (or ACCOUNT_SCOPE) and how it differs from the catalogue.

    `listed` is None when the kind was not probed or Meta's answer held no list (`note` says
    why); `missing` are names Meta offers that the catalogue lacks, `stale` names the catalogue
    would ask that Meta no longer lists.
    """

    kind: str
    asked_on: str | None
    listed: tuple[str, ...] | None
    missing: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    note: str = ""

    @property
    def differs(self) -> bool:
        return bool(self.missing or self.stale)


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """The probe's outcome: per kind the difference, and the calls it spent (retries included)."""

    api_version: str
    login: Login
    account_id: str | None
    calls: int
    kinds: tuple[KindProbe, ...]

    @property
    def differs(self) -> bool:
        return any(k.differs for k in self.kinds)

    @property
    def unprobed(self) -> str | None:
        """Why no kind got a list to compare, or None when one did: a probe that compared
        nothing must not pass for a catalogue that matches. The account scope's note comes
        last and names the root cause when no account could be listed."""
        if any(k.listed is not None for k in self.kinds):
            return None
        return next((k.note for k in reversed(self.kinds) if k.note), "nothing was asked")


def catalogue_names(
    scope: str, version: ApiVersion, login: Login, catalog: Catalog, *, unasked: bool
) -> frozenset[str]:
    """The names the catalogue has for a kind (or ACCOUNT_SCOPE) at a version and login; with
    `unasked` those it knows but a harvest does not ask too."""
    if scope == ACCOUNT_SCOPE:
        return frozenset(
            m.name for m in catalog.account_metrics_for(version, login, unasked=unasked)
        )
    kind = MediaKind(scope)
    return frozenset(
        m.name for m in catalog.media_metrics_for(kind, version, login, unasked=unasked)
    )


def compare(
    scope: str,
    listed: Sequence[str],
    version: ApiVersion,
    login: Login,
    catalog: Catalog,
    asked_on: str | None = None,
) -> KindProbe:
    """Meta's list for a scope against the catalogue: pure, so a run and the probe agree."""
    known = catalogue_names(scope, version, login, catalog, unasked=True)
    asked = catalogue_names(scope, version, login, catalog, unasked=False)
    offered = frozenset(listed)
    return KindProbe(
        kind=scope,
        asked_on=asked_on,
        listed=tuple(listed),
        missing=tuple(sorted(offered - known)),
        stale=tuple(sorted(asked - offered)),
    )


async def probe_catalog(
    config: Config,
    *,
    catalog: Catalog | None = None,
    login: Login = "facebook",
    client: GraphClient | None = None,
) -> ProbeReport:
    """Probe Meta's metric lists with the config's first usable token (see the module doc).

    Raises ConfigError when the config lists no account; a token Meta refuses moves on to the
    next account. `client` is for tests that count calls on a client of their own.
    """
    if not config.accounts:
        raise ConfigError("config", "accounts", "--probe needs at least one account with a token")
    # Each login has its own metric lists: probe with accounts of the login compared only.
    accounts = [a for a in config.accounts if a.login == login]
    if not accounts:
        raise ConfigError("config", "accounts", f"--probe needs an account on {login} login")
    catalog = catalog or load_catalog()
    version = ApiVersion.parse(config.graph.api_version)
    own = client is None
    client = client or GraphClient(config.graph, config.limits, config.retry)
    if own:
        async with client:
            kinds, used = await _probe(client, accounts, version, login, catalog)
    else:
        kinds, used = await _probe(client, accounts, version, login, catalog)
    return ProbeReport(
        api_version=config.graph.api_version,
        login=login,
        account_id=used.id if used is not None else None,
        calls=client.statistics().requests,
        kinds=kinds,
    )


async def _probe(
    client: GraphClient,
    accounts: Sequence[Account],
    version: ApiVersion,
    login: Login,
    catalog: Catalog,
) -> tuple[tuple[KindProbe, ...], Account | None]:
    samples: dict[MediaKind, list[tuple[Account, Media]]] = {}
    first: Account | None = None
    refused: list[str] = []
    listed_accounts = 0
    for account in accounts:
        if listed_accounts == MAX_ACCOUNTS or len(samples) == len(MediaKind):
            break
        try:
            media = await _list(client, account)
        except NothingWorks:
            raise  # the endpoint or the app is wrong: the probe stops as a run would
        except GraphError as error:  # a refused token, a broken page: try the next account
            refused.append(f"{account.id}: {type(error).__name__}: {error.message}")
            continue
        first = first or account
        listed_accounts += 1
        for item in media:
            kind = media_kind(item.media_type, item.media_product_type)
            if kind is not None and not item.is_child:
                found = samples.setdefault(kind, [])
                if len(found) < TRIES_PER_KIND:
                    found.append((account, item))
    out: list[KindProbe] = []
    for kind in MediaKind:
        out.append(await _probe_kind(client, kind, samples.get(kind, []), version, login, catalog))
    if first is None:
        why = "no account could be listed" + (f" ({'; '.join(refused)})" if refused else "")
        out.append(KindProbe(ACCOUNT_SCOPE, None, None, note=why))
    else:
        listed, note = await _ask(client, f"{first.id}/insights", first, {"period": "day"})
        out.append(
            compare(ACCOUNT_SCOPE, listed, version, login, catalog, first.id)
            if listed is not None
            else KindProbe(ACCOUNT_SCOPE, first.id, None, note=note)
        )
    return tuple(out), first


async def _list(client: GraphClient, account: Account) -> list[Media]:
    """The first page of an account's media and of its live stories (stories are their own
    edge), parents only: a sample, not a listing."""
    out: list[Media] = []
    for edge in ("media", "stories"):
        params = {"fields": _FIELDS, "limit": str(MEDIA_PAGE)}
        page = await client.get(f"{account.id}/{edge}", params, account=account)
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise MalformedReply(f"{account.id}/{edge}: a page without a 'data' list")
        for item in data:
            out.extend(m for m in parse_media(item, account.id) if not m.is_child)
    return out


async def _probe_kind(
    client: GraphClient,
    kind: MediaKind,
    samples: Sequence[tuple[Account, Media]],
    version: ApiVersion,
    login: Login,
    catalog: Catalog,
) -> KindProbe:
    if not samples:
        return KindProbe(str(kind), None, None, note="no media of this kind listed")
    note = ""
    for account, media in samples:
        listed, note = await _ask(client, f"{media.id}/insights", account, {})
        if listed is not None:
            return compare(str(kind), listed, version, login, catalog, media.id)
    return KindProbe(str(kind), samples[-1][1].id, None, note=note)


async def _ask(
    client: GraphClient, path: str, account: Account, extra: dict[str, str]
) -> tuple[tuple[str, ...] | None, str]:
    """Ask `path` for the probe metric: Meta's list, or None and why there is none."""
    try:
        await client.get(path, {"metric": PROBE_METRIC, **extra}, account=account)
    except MetricUnsupported as error:
        if error.valid is None:
            return None, f"Meta refused the probe without a list: {error.message}"
        return error.valid, ""
    except NothingWorks:
        raise  # the endpoint or the app is wrong: the probe stops as a run would
    except GraphError as error:  # a deleted media, a refused token: this scope stays unprobed
        return None, f"{type(error).__name__}: {error.message}"
    return None, f"Meta accepted {PROBE_METRIC!r}: no list to compare"
