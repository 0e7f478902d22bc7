"""The simulator's knobs: frozen data passed to `run_simulator` and built by the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType

FAULT_KINDS: tuple[str, ...] = (
    "server_error",
    "html_error",
    "truncated_json",
    "dropped_connection",
    "stall",
    "batch_null",
)


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Per-request probabilities of each injected fault; all zero means a perfectly healthy API.

    Draws are keyed by the request's identity and its attempt number, never by arrival order, so a
    run with the same seed injects the same faults however concurrently the client calls.
    """

    server_error: float = 0.0
    html_error: float = 0.0
    truncated_json: float = 0.0
    dropped_connection: float = 0.0
    stall: float = 0.0
    batch_null: float = 0.0
    seed: int = 0
    # Longer than any sane client timeout, so a stall exercises the client's timeout path.
    stall_seconds: float = 30.0

    def rate(self, kind: str) -> float:
        return float(getattr(self, kind))

    @property
    def any(self) -> bool:
        return any(self.rate(kind) > 0 for kind in FAULT_KINDS)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Call budgets over sliding windows; None disables a budget.

    Meta's windows are an hour (app) and 24 h (BUC); tests shrink them to seconds. A "minute" in
    `estimated_time_to_regain_access` lasts `minute_seconds` real seconds, so blocks scale too.
    """

    account_budget: int | None = None
    app_budget: int | None = None
    token_budget: int | None = None
    window_seconds: float = 3600.0
    minute_seconds: float = 60.0
    # Each call made while blocked pushes the block end this many (scaled) minutes further.
    block_extension_minutes: float = 1.0

    @property
    def enabled(self) -> bool:
        return any(b is not None for b in (self.account_budget, self.app_budget, self.token_budget))


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Everything that shapes one simulated Graph API: world, strictness, auth, limits, faults."""

    seed: int = 7
    accounts: int = 5
    media_per_account: int = 60
    api_version: str = "v25.0"
    now: datetime | None = None
    as_of: date | None = None
    app_secret: str | None = None
    require_appsecret_proof: bool = False
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    faults: FaultSettings = field(default_factory=FaultSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    troubles: bool = True
    # Which login's metric set is served ("facebook" or "instagram"); today clients use Facebook
    # Login only, so some metrics (total_likes, ...) exist only under the default.
    login: str = "facebook"
    # The first this many accounts use Instagram Login: IGAA tokens served on the Instagram host
    # (its own port) only, and the Instagram Login metric set.
    instagram_accounts: int = 0
    # Whether the Instagram host takes Graph batch POSTs (unconfirmed at Meta; off: refused).
    instagram_batch: bool = False
    # How old every Instagram Login token is when the world starts: under 24 h Meta refuses
    # to refresh it.
    instagram_token_age_hours: float = 48.0
    instagram_port: int = 0
    # Metric names the world offers beyond Meta's tables, by kind (PHOTO, VIDEO, CAROUSEL, REEL,
    # STORY, or the product types FEED and REELS) or ACCOUNT: served with values and listed in the
    # "must be one of" error, so a probe of the harvester's catalogue has something to find.
    extra_metrics: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Some legacy FEED videos refuse total_interactions, likes and comments ("(#100) Incompatible
    # metric ... with the media"), as seen at Meta. Off by default: the harvester's tests expect
    # every listed media to answer its whole metric set.
    legacy_video_refusals: bool = False
    # (account metric, breakdown key) pairs Meta's tables offer but this world refuses ("The
    # breakdown K is not supported for the metric M"), as after Meta withdraws a breakdown: what a
    # client whose catalogue still lists the pair meets.
    withdrawn_breakdowns: frozenset[tuple[str, str]] = frozenset()
    # Share of media shared to Facebook (World.shared_to_facebook): 0 makes every media refuse
    # crossposted_views and facebook_views, as an account that never cross-posts does.
    shared_to_facebook_percent: int = 30
    # Competitor accounts (`competitor_0` ...), seen only through business discovery.
    competitors: int = 0
    request_log: bool = True
    # Optional JSONL copy of the request log (tokens hashed, never stored), for scripts and the CLI.
    request_log_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
