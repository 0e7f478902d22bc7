"""`harvester plan`: what a run would do, before a long backfill commits hours to it.

A cheap listing pass (ids and types only, 100 media a page) counts each account's media by kind;
routing turns them into the insight calls the run would make, the account stage's own planner
gives the account-insight calls, and the configured limits turn calls into a wall-time estimate.
Conditional metrics are priced at one call per media that may have them: the most a run spends
(an account whose media refuse them K times in a row is not asked them again).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from harvester.catalog import ApiVersion, load_catalog, media_kind
from harvester.config import ACCOUNT_TOTALS, Config
from harvester.graph.client import GraphClient
from harvester.graph.errors import GraphError
from harvester.graph.replies import parse_media
from harvester.harvest.account_insights import account_window, plan_requests
from harvester.harvest.competitors import discovery_calls
from harvester.harvest.routing import route
from harvester.models import Account, HarvestWindow

PLAN_FIELDS = "id,media_type,media_product_type,timestamp"


@dataclass
class AccountPlan:
    account_id: str
    media_by_kind: Counter[str] = field(default_factory=Counter)
    stories: int = 0
    listing_calls: int = 0
    insight_calls: int = 0
    account_calls: int = 0
    # The `accounts` row's profile call (`[harvest] profiles`): one per account per run.
    profile_calls: int = 0
    problem: str | None = None

    @property
    def media(self) -> int:
        return sum(self.media_by_kind.values())

    @property
    def calls(self) -> int:
        return self.listing_calls + self.insight_calls + self.account_calls + self.profile_calls


@dataclass(frozen=True)
class Plan:
    accounts: list[AccountPlan]
    mean_latency_seconds: float
    estimate_seconds: float
    bound_by: str
    # Account-insight calls per account under each `[harvest] account_totals` (both priced, as
    # quota is what limits users at Meta); the configured one is in the accounts' calls.
    account_calls_by_totals: dict[str, int] = field(default_factory=dict)
    # Business discovery calls for the configured competitors, at most (app platform limit).
    competitors: int = 0
    competitor_calls: int = 0

    def render(self) -> str:
        lines = [
            f"{'account':<20} {'media':>8} {'stories':>8} {'calls':>9}  by kind / problem",
        ]
        for p in self.accounts:
            detail = p.problem or ", ".join(f"{k} {n}" for k, n in sorted(p.media_by_kind.items()))
            lines.append(
                f"{p.account_id:<20} {p.media:>8,} {p.stories:>8,} {p.calls:>9,}  {detail}"
            )
        total_media = sum(p.media for p in self.accounts)
        total_calls = sum(p.calls for p in self.accounts) + self.competitor_calls
        lines += [
            f"{'total':<20} {total_media:>8,} {sum(p.stories for p in self.accounts):>8,} "
            f"{total_calls:>9,}",
            "",
            f"estimated wall time: {_duration(self.estimate_seconds)} (bound by {self.bound_by}; "
            f"mean latency {self.mean_latency_seconds * 1000:.0f} ms seen while listing)",
        ]
        if self.competitors:
            lines.insert(
                -2,
                f"{'business discovery':<20} {self.competitors:>8,} {'':>8} "
                f"{self.competitor_calls:>9,}  competitors (media column), calls at most; "
                "the app's platform limit, not the accounts'",
            )
        if self.account_calls_by_totals:
            priced = ", ".join(
                f'"{mode}" {calls:,}' for mode, calls in self.account_calls_by_totals.items()
            )
            lines.append(f"account insight calls per account by [harvest] account_totals: {priced}")
        return "\n".join(lines)


async def make_plan(config: Config, window: HarvestWindow | None = None) -> Plan:
    """List every account cheaply and price the run; listing failures are reported, not raised."""
    window = window or HarvestWindow()
    version = ApiVersion.parse(config.graph.api_version)
    now = datetime.now(UTC)
    account_metrics = load_catalog().account_metrics_for(version)
    since, until = account_window(window.since, window.until, now=now)
    by_totals = {
        mode: len(
            plan_requests(
                account_metrics,
                since,
                until,
                now=now,
                breakdowns=config.harvest.breakdowns,
                account_totals=mode,
            )
        )
        for mode in ACCOUNT_TOTALS
        if config.harvest.account_insights
    }
    account_calls = by_totals.get(config.harvest.account_totals, 0)
    profile_calls = int(config.harvest.profiles)
    plans = [
        AccountPlan(a.id, account_calls=account_calls, profile_calls=profile_calls)
        for a in config.accounts
    ]
    latencies: list[float] = []
    limiter = anyio.CapacityLimiter(config.limits.max_accounts_in_flight)
    client = GraphClient(config.graph, config.limits, config.retry)
    async with client, anyio.create_task_group() as tg:
        for account, plan in zip(config.accounts, plans, strict=True):
            tg.start_soon(
                _plan_account,
                client,
                account,
                plan,
                window,
                version,
                config,
                limiter,
                latencies,
            )
    latency = sum(latencies) / len(latencies) if latencies else 0.0
    harvest = config.harvest
    competitor_calls = len(config.competitors) * discovery_calls(
        harvest.competitor_media, harvest.media_page_size
    )
    estimate, bound = _estimate(config, plans, latency, competitor_calls)
    return Plan(
        plans, latency, estimate, bound, by_totals, len(config.competitors), competitor_calls
    )


async def _plan_account(
    client: GraphClient,
    account: Account,
    plan: AccountPlan,
    window: HarvestWindow,
    version: ApiVersion,
    config: Config,
    limiter: anyio.CapacityLimiter,
    latencies: list[float],
) -> None:
    params = {"fields": PLAN_FIELDS, "limit": "100"}
    if window.since is not None:
        params["since"] = str(int(window.since.timestamp()))
    if window.until is not None:
        params["until"] = str(int(window.until.timestamp()))
    edges = [("media", params)]
    if config.harvest.stories:
        edges.append(("stories", {"fields": PLAN_FIELDS, "limit": "100"}))
    async with limiter:
        try:
            for edge, edge_params in edges:
                started = time.perf_counter()
                async for page in client.paginate(
                    f"{account.id}/{edge}", edge_params, account=account
                ):
                    latencies.append(time.perf_counter() - started)
                    plan.listing_calls += 1
                    for item in page:
                        media = next(parse_media(item, account.id))
                        if window.since and media.timestamp and media.timestamp < window.since:
                            continue
                        kind = media_kind(media.media_type, media.media_product_type)
                        plan.media_by_kind[str(kind) if kind else "unknown"] += 1
                        plan.stories += edge == "stories"
                        planned = route(
                            media.media_type, media.media_product_type, version, login=account.login
                        )
                        if planned.metrics and config.harvest.media_insights:
                            extra = len(planned.breakdowns) if config.harvest.breakdowns else 0
                            # At most: an account stops after K refusals in a row.
                            if config.harvest.facebook_views:
                                extra += len(planned.conditional)
                            plan.insight_calls += 1 + extra
                    started = time.perf_counter()
        except GraphError as error:
            plan.problem = f"{type(error).__name__}: {getattr(error, 'message', error)}"
            plan.account_calls = plan.profile_calls = 0


def _estimate(
    config: Config, plans: Sequence[AccountPlan], latency: float, app_only_calls: int = 0
) -> tuple[float, str]:
    """The slowest of the limits the run must respect, assuming nothing throttles it further.
    `app_only_calls` (business discovery) count against the app and the sockets only."""
    limits = config.limits
    total = sum(p.calls for p in plans) + app_only_calls
    busiest = max((p.calls for p in plans), default=0)
    bounds = {
        "max_requests_in_flight": total * latency / limits.max_requests_in_flight,
        "max_requests_per_account": busiest * latency / limits.max_requests_per_account,
    }
    if limits.account_calls_per_hour:
        bounds["account_calls_per_hour"] = 3600 * busiest / limits.account_calls_per_hour
    if limits.app_calls_per_hour:
        bounds["app_calls_per_hour"] = 3600 * total / limits.app_calls_per_hour
    bound = max(bounds, key=lambda name: bounds[name])
    return bounds[bound], bound


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
