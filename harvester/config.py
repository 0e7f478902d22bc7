"""The run configuration: TOML validated into frozen dataclasses, every error naming its key.

A harvest of thousands of accounts must fail before its first request, not an hour in, so everything
that can be checked offline is checked here: layout, types, ranges, account ids, that every token
environment variable is set and that the output folder can be written. `ConfigError` is one line,
`<file>: <key path>: <problem>`, so the CLI can print it and exit 2. Tokens exist only inside
`Secret`; no message ever shows one, not even a prefix.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from harvester.catalog import BATCH_MAX_OPS
from harvester.models import Account, Secret

log = logging.getLogger(__name__)

__all__ = [
    "Competitor",
    "Config",
    "ConfigError",
    "DiscoverySettings",
    "GraphSettings",
    "HarvestSettings",
    "LimitSettings",
    "OutputSettings",
    "RetrySettings",
    "WebhookSettings",
    "load_config",
    "parse_config",
]


class ConfigError(Exception):
    """A config problem, rendered as one line: `<file>: <key path>: <problem>`."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        line = f"{source}: {key}: {problem}"
        # Quoted TOML keys may hold newlines; escaping them keeps the promise of one line.
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in line))
        self.source = source
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class GraphSettings:
    base_url: str = "https://graph.facebook.com"
    api_version: str = "v25.0"  # current, live until 2028-07-29 (catalogue: version dates)
    app_secret: Secret | None = None
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    # Instagram Login accounts' host: their tokens go here and nowhere else (`graph.client`).
    instagram_base_url: str = "https://graph.instagram.com"
    # Whether graph.instagram.com takes Graph batch POSTs is unconfirmed: "auto" tries one and
    # falls back to single GETs for that host if Meta refuses it; "on" / "off" decide outright.
    instagram_batch: str = "auto"
    # Unconfirmed there too, and an Instagram Login app has its own app secret: off by default.
    instagram_appsecret_proof: bool = False


@dataclass(frozen=True)
class OutputSettings:
    path: str
    row_group_rows: int = 131_072
    # A row group is also written once its rows reach this much Arrow memory (MB, uncompressed):
    # the sink buffers one row group per dataset, and wide rows (media, with captions and URLs)
    # would otherwise hold ~50 MB each at 131,072 rows.
    row_group_mb: float = 16.0
    target_file_mb: float = 128.0
    compression: str = "zstd"
    # A manifest of committed files is written at least this often: a crash loses at most this
    # much harvesting, and each checkpoint closes one file per dataset (fewer is fewer files).
    checkpoint_seconds: float = 300.0
    # The lake's writer lock (`lake.lock`): its holder refreshes its claim every quarter of this,
    # and a claim not refreshed for this long is a dead writer's, taken over by the next one.
    lock_stale_seconds: float = 120.0
    # For S3-compatible stores (MinIO, R2...); else AWS_ENDPOINT_URL, else AWS itself.
    s3_endpoint: str | None = None


@dataclass(frozen=True)
class LimitSettings:
    max_accounts_in_flight: int = 16
    max_requests_in_flight: int = 64
    max_requests_per_account: int = 16
    account_calls_per_hour: int | None = None
    app_calls_per_hour: int | None = None
    slow_down_at_pct: float = 75.0
    stop_at_pct: float = 95.0
    # Length of Meta's "minute" in estimated_time_to_regain_access; only tests change it.
    regain_unit_seconds: float = 60.0
    # At or above stop_at_pct a scope waits this long before each call, doubling up to the max
    # while usage stays high: Meta's windows are rolling, so capacity comes back gradually.
    probe_seconds: float = 5.0
    probe_max_seconds: float = 300.0
    # Meta's rolling windows: 24 h for an account's Business Use Case budget, an hour for the
    # app's. The gate models them from its own calls to know when a full budget frees up.
    account_window_seconds: float = 86_400.0
    app_window_seconds: float = 3_600.0


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """The retry policy (`graph.retry`): calls per request (the first included), backoff base
    and cap, retries for the whole run, and how long a run in which nothing works goes on
    (`graph.health`: no request succeeded and all failed alike; 0 never stops it early)."""

    max_attempts: int = 6
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 60.0
    run_budget: int = 10_000
    # Under a minute: a dead endpoint stops the run within its first minute (the check runs as
    # failures arrive, so the stop comes a retry interval or so after this).
    fail_fast_seconds: float = 45.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("base_delay_seconds and max_delay_seconds must not be negative")
        if self.run_budget < 0:
            raise ValueError(f"run_budget must not be negative, got {self.run_budget}")
        if self.fail_fast_seconds < 0:
            raise ValueError(f"fail_fast_seconds must be >= 0, got {self.fail_fast_seconds}")


# How account total_value metrics are asked: per UTC day, or per requested window.
ACCOUNT_TOTALS = ("day", "window")


@dataclass(frozen=True)
class HarvestSettings:
    stories: bool = True
    media_insights: bool = True
    media_page_size: int = 100
    breakdowns: bool = True
    account_insights: bool = True
    # Account total_value metrics: "day" asks one total per UTC day (~5 calls per account-day),
    # "window" one per metric group over each requested window (Meta's 30-day limit), for quota.
    account_totals: str = "day"
    # Ops per Graph batch POST (Meta allows 50); 0 or 1 sends one request per media instead.
    batch_size: int = 50
    # Sweeps refresh the insights of media posted within this many days (reach mostly settles
    # within a week of posting).
    lookback_days: int = 7
    # crossposted_views and facebook_views exist only for media shared to Facebook and cost one
    # extra call per media that may have them; false asks them never.
    facebook_views: bool = True
    # An account whose media refuse those this many times in a row is not asked them again in
    # the run (each refusal is a call spent for nothing).
    conditional_refusals_in_a_row: int = 10
    # One `GET /{ig-user-id}` per owned account per run: its `accounts` row (followers, ...).
    profiles: bool = True
    # The newest this many media of each competitor, through business discovery (0: profile
    # only); every page of them is one call against the app's platform limit.
    competitor_media: int = 100


@dataclass(frozen=True)
class WebhookSettings:
    """The story_insights receiver (`harvester webhook`); the app secret is [graph]'s."""

    verify_token: Secret | None = None
    path: str = "/webhook"
    # Rows are committed as a Parquet file once this many are waiting, or after this many seconds.
    batch_rows: int = 10_000
    flush_interval_seconds: float = 60.0


@dataclass(frozen=True)
class DiscoverySettings:
    """Find accounts through `me/accounts` with a user token (None: discovery is off)."""

    token: Secret | None = None
    token_env: str | None = None
    page_size: int = 100


@dataclass(frozen=True)
class Competitor:
    """An account benchmarked through business discovery: its username (lower case, as
    Instagram's are) and the owned account whose token asks (None: the first usable one)."""

    username: str
    via: str | None = None


@dataclass(frozen=True)
class Config:
    graph: GraphSettings
    output: OutputSettings
    limits: LimitSettings
    retry: RetrySettings
    harvest: HarvestSettings
    accounts: tuple[Account, ...]
    source: str  # the config file, for messages
    webhook: WebhookSettings = WebhookSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    competitors: tuple[Competitor, ...] = ()


_VERSION = re.compile(r"v\d+\.\d+")
_ACCOUNT_ID = re.compile(r"\d+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPRESSIONS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")
_CSV_HEADER = ["id", "token_env"]
# The accounts CSV: `id` and the token's source (`token_env` or `token_file`), then `login`.
_CSV_HEADERS = (
    _CSV_HEADER,
    ["id", "token_env", "login"],
    ["id", "token_file"],
    ["id", "token_file", "login"],
)
LOGINS = ("facebook", "instagram")
INSTAGRAM_BATCH = ("auto", "on", "off")
_COMPETITOR_KEYS = ("username", "via")
_COMPETITOR_HEADERS = (["username"], ["username", "via"])
# Instagram usernames: letters, digits, periods and underscores, at most 30 (a leading '@' is
# dropped, as people write them).
_USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")
# Meta documents no maximum page size for /media; 100 is the largest seen to be honoured.
_MAX_PAGE_SIZE = 100

_TABLES: dict[str, tuple[str, ...]] = {
    "graph": (
        "base_url",
        "instagram_base_url",
        "instagram_batch",
        "instagram_appsecret_proof",
        "api_version",
        "app_secret_env",
        "timeout_seconds",
        "connect_timeout_seconds",
    ),
    "output": tuple(f.name for f in fields(OutputSettings)),
    "limits": tuple(f.name for f in fields(LimitSettings)),
    "retry": tuple(f.name for f in fields(RetrySettings)),
    "harvest": tuple(f.name for f in fields(HarvestSettings)),
    "sources": ("accounts_csv", "competitors_csv"),
    "webhook": ("verify_token_env", "path", "batch_rows", "flush_interval_seconds"),
    "discovery": ("token_env", "page_size"),
}
_ACCOUNT_KEYS = ("id", "token_env", "token_file", "login")


def load_config(
    path: str | Path, *, env: Mapping[str, str] | None = None, writing: bool = True
) -> Config:
    """Read and validate a config file; relative paths in it are relative to its folder.
    `writing=False` for commands that never write the lake (`plan`, `check`): a read-only lake
    is then no error."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "file", "not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "file", f"cannot be read ({type(exc).__name__})") from None
    base_dir = Path(path).expanduser().resolve().parent
    return parse_config(
        text,
        source=source,
        base_dir=base_dir,
        env=os.environ if env is None else env,
        writing=writing,
    )


def parse_config(
    text: str, *, source: str, base_dir: Path, env: Mapping[str, str], writing: bool = True
) -> Config:
    """Validate config text; `env` supplies the token and app-secret variables the config names."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "TOML syntax", str(exc)) from None
    return _Parser(source, base_dir, env, writing).parse(doc)


def _type_name(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return names.get(type(value), "table" if isinstance(value, dict) else type(value).__name__)


def _suggest(key: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"


def _short(value: str) -> str:
    """Echo a user's value in a message, but never a long one (it might be a pasted token)."""
    return repr(value) if len(value) <= 40 else f"(a {len(value)}-character value, not shown)"


def _looks_like_token(name: str) -> bool:
    # Variable names are short and usually upper case; access tokens are long mixed-case runs.
    return len(name) >= 32 and any(c.islower() for c in name) and any(c.isupper() for c in name)


class _Table:
    """One TOML table being read, remembering its key path for messages."""

    def __init__(self, source: str, path: str, data: dict[str, Any]) -> None:
        self.source = source
        self.path = path
        self.data = data

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, f"{self.path}.{key}", problem)

    def check_keys(self, valid: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in valid:
                raise self.error(key, "unknown key" + _suggest(key, valid))

    def _get(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self.data.get(key)
        # bool is a subclass of int in Python but never a number in a config file.
        if value is not None and (
            isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds)
        ):
            raise self.error(key, f"expected {expected}, got {_type_name(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        value: str | None = self._get(key, (str,), "a string")
        if value is not None and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def string(self, key: str, default: str) -> str:
        value = self.optional_string(key)
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value: bool | None = self._get(key, (bool,), "true or false")
        return default if value is None else value

    def optional_integer(self, key: str, *, minimum: int = 1) -> int | None:
        value: int | None = self._get(key, (int,), "an integer")
        if value is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value = self.optional_integer(key, minimum=minimum)
        return default if value is None else value

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        value: int | float | None = self._get(key, (int, float), "a number")
        if value is None:
            return default
        if value != value or value in (float("inf"), float("-inf")):
            raise self.error(key, f"must be a finite number, got {value}")
        if positive and value <= 0:
            raise self.error(key, f"must be > 0, got {value}")
        if not positive and value < 0:
            raise self.error(key, f"must be >= 0, got {value}")
        return float(value)

    def percent(self, key: str, default: float) -> float:
        value = self.number(key, default)
        if value > 100:
            raise self.error(key, f"must be in (0, 100], got {value:g}")
        return value


class _Parser:
    def __init__(self, source: str, base_dir: Path, env: Mapping[str, str], writing: bool) -> None:
        self.source = source
        self.base_dir = base_dir
        self.env = env
        self.writing = writing

    def parse(self, doc: dict[str, Any]) -> Config:
        valid_top = (*_TABLES, "accounts", "competitors")
        for key, value in doc.items():
            if key not in valid_top:
                hint = _suggest(key, valid_top)
                raise ConfigError(self.source, f"[{key}]", "unknown table" + hint)
            if key not in ("accounts", "competitors") and not isinstance(value, dict):
                raise ConfigError(
                    self.source, f"[{key}]", f"expected a table, got {_type_name(value)}"
                )
        tables = {name: _Table(self.source, f"[{name}]", doc.get(name, {})) for name in _TABLES}
        for name, table in tables.items():
            table.check_keys(_TABLES[name])
        discovery = self.discovery(tables["discovery"])
        # Read in this order, so a file's first problem is the one reported.
        graph = self.graph(tables["graph"])
        output = self.output(tables["output"])
        limits = self.limits(tables["limits"])
        retry = self.retry(tables["retry"])
        harvest = self.harvest(tables["harvest"])
        accounts = self.accounts(
            doc.get("accounts"), tables["sources"], discovered=discovery.token is not None
        )
        return Config(
            graph=graph,
            output=output,
            limits=limits,
            retry=retry,
            harvest=harvest,
            accounts=accounts,
            source=self.source,
            webhook=self.webhook(tables["webhook"]),
            discovery=discovery,
            competitors=self.competitors(
                doc.get("competitors"),
                tables["sources"],
                None if discovery.token is not None else {a.id for a in accounts},
            ),
        )

    def webhook(self, t: _Table) -> WebhookSettings:
        d = WebhookSettings()
        env = t.optional_string("verify_token_env")
        token = None if env is None else self.env_value("[webhook].verify_token_env", env.strip())
        path = t.string("path", d.path)
        if not path.startswith("/") or any(c in path for c in "?# "):
            raise t.error("path", f"{_short(path)} is not a URL path like '/webhook'")
        return WebhookSettings(
            verify_token=token,
            path=path,
            batch_rows=t.integer("batch_rows", d.batch_rows),
            flush_interval_seconds=t.number("flush_interval_seconds", d.flush_interval_seconds),
        )

    def discovery(self, t: _Table) -> DiscoverySettings:
        d = DiscoverySettings()
        env = t.optional_string("token_env")
        page = t.integer("page_size", d.page_size)
        if page > _MAX_PAGE_SIZE:
            raise t.error("page_size", f"must be <= {_MAX_PAGE_SIZE}, got {page}")
        if env is None:
            return DiscoverySettings(page_size=page)
        token = self.env_value("[discovery].token_env", env.strip())
        return DiscoverySettings(token=token, token_env=env.strip(), page_size=page)

    def env_value(self, key: str, name: str) -> Secret:
        """Look up the variable a config key names; the error names the variable, never a value."""
        if not name:
            raise ConfigError(self.source, key, "empty (name the environment variable)")
        if _looks_like_token(name):
            raise ConfigError(
                self.source,
                key,
                "looks like a token, not an environment variable name (value not shown)",
            )
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                self.source, key, f"{_short(name)} is not an environment variable name"
            )
        value = self.env.get(name, "")
        if not value.strip():
            raise ConfigError(self.source, key, f"environment variable {name!r} is unset or empty")
        return Secret(value.strip())

    def graph(self, t: _Table) -> GraphSettings:
        d = GraphSettings()
        base_url = self.host_url(t, "base_url", d.base_url)
        instagram_base_url = self.host_url(t, "instagram_base_url", d.instagram_base_url)
        instagram_batch = t.string("instagram_batch", d.instagram_batch)
        if instagram_batch not in INSTAGRAM_BATCH:
            raise t.error("instagram_batch", f"must be one of {', '.join(INSTAGRAM_BATCH)}")
        api_version = t.string("api_version", d.api_version)
        if not _VERSION.fullmatch(api_version):
            raise t.error("api_version", f"{_short(api_version)} is not a version like 'v21.0'")
        secret_env = t.optional_string("app_secret_env")
        app_secret = (
            None if secret_env is None else self.env_value("[graph].app_secret_env", secret_env)
        )
        return GraphSettings(
            base_url=base_url,
            instagram_base_url=instagram_base_url,
            instagram_batch=instagram_batch,
            instagram_appsecret_proof=t.boolean(
                "instagram_appsecret_proof", d.instagram_appsecret_proof
            ),
            api_version=api_version,
            app_secret=app_secret,
            timeout_seconds=t.number("timeout_seconds", d.timeout_seconds),
            connect_timeout_seconds=t.number("connect_timeout_seconds", d.connect_timeout_seconds),
        )

    @staticmethod
    def host_url(t: _Table, key: str, default: str) -> str:
        url = t.string(key, default)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise t.error(key, f"{_short(url)} is not an http(s) URL")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise t.error(
                key,
                f"{_short(url)} must be scheme and host only; "
                "set the version in [graph].api_version",
            )
        return url.rstrip("/")

    def output(self, t: _Table) -> OutputSettings:
        raw = t.optional_string("path")
        if raw is None:
            raise t.error("path", "missing (the lake's folder or s3:// URI)")
        path = self.output_path(t, raw)
        compression = t.string("compression", "zstd")
        if compression.lower() not in _COMPRESSIONS:
            raise t.error(
                "compression",
                f"{_short(compression)} is not one of {', '.join(_COMPRESSIONS)}",
            )
        d = OutputSettings(path)
        return OutputSettings(
            path=path,
            row_group_rows=t.integer("row_group_rows", d.row_group_rows),
            row_group_mb=t.number("row_group_mb", d.row_group_mb),
            target_file_mb=t.number("target_file_mb", d.target_file_mb),
            compression=compression.lower(),
            checkpoint_seconds=t.number("checkpoint_seconds", d.checkpoint_seconds),
            lock_stale_seconds=t.number("lock_stale_seconds", d.lock_stale_seconds),
            s3_endpoint=self.s3_endpoint(t, path),
        )

    def s3_endpoint(self, t: _Table, path: str) -> str | None:
        endpoint = t.optional_string("s3_endpoint")
        if endpoint is None:
            return None
        if not path.startswith("s3://"):
            raise t.error("s3_endpoint", "is set but [output].path is not an s3:// URI")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise t.error("s3_endpoint", f"{_short(endpoint)} is not an http(s) URL")
        return endpoint.rstrip("/")

    def output_path(self, t: _Table, raw: str) -> str:
        """Return the lake root: an s3:// URI as given, or an absolute local folder we can write."""
        if "://" in raw:
            scheme, _, rest = raw.partition("://")
            if scheme != "s3":
                raise t.error("path", f"scheme {scheme!r} is not supported; use a folder or s3://")
            if not rest.strip("/"):
                raise t.error("path", f"{_short(raw)} names no bucket")
            return raw.rstrip("/")
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else self.base_dir / path
        path = Path(os.path.normpath(path))
        if path.exists():
            if not path.is_dir():
                raise t.error("path", f"'{path}' exists and is not a directory")
            if self.writing and not os.access(path, os.W_OK | os.X_OK):
                raise t.error("path", f"'{path}' is not writable")
            return str(path)
        ancestor = path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise t.error("path", f"'{ancestor}' is a file, so '{path}' cannot be created")
        if self.writing and not os.access(ancestor, os.W_OK | os.X_OK):
            raise t.error("path", f"'{ancestor}' is not writable, so '{path}' cannot be created")
        return str(path)

    def limits(self, t: _Table) -> LimitSettings:
        d = LimitSettings()
        slow = t.percent("slow_down_at_pct", d.slow_down_at_pct)
        stop = t.percent("stop_at_pct", d.stop_at_pct)
        if stop < slow:
            raise t.error("stop_at_pct", f"{stop:g} is below [limits].slow_down_at_pct ({slow:g})")
        return LimitSettings(
            max_accounts_in_flight=t.integer("max_accounts_in_flight", d.max_accounts_in_flight),
            max_requests_in_flight=t.integer("max_requests_in_flight", d.max_requests_in_flight),
            max_requests_per_account=t.integer(
                "max_requests_per_account", d.max_requests_per_account
            ),
            account_calls_per_hour=t.optional_integer("account_calls_per_hour"),
            app_calls_per_hour=t.optional_integer("app_calls_per_hour"),
            slow_down_at_pct=slow,
            stop_at_pct=stop,
            regain_unit_seconds=t.number("regain_unit_seconds", d.regain_unit_seconds),
            probe_seconds=t.number("probe_seconds", d.probe_seconds),
            probe_max_seconds=t.number("probe_max_seconds", d.probe_max_seconds),
            account_window_seconds=t.number("account_window_seconds", d.account_window_seconds),
            app_window_seconds=t.number("app_window_seconds", d.app_window_seconds),
        )

    def retry(self, t: _Table) -> RetrySettings:
        d = RetrySettings()
        base = t.number("base_delay_seconds", d.base_delay_seconds, positive=False)
        cap = t.number("max_delay_seconds", d.max_delay_seconds, positive=False)
        if cap < base:
            raise t.error(
                "max_delay_seconds", f"{cap:g} is below [retry].base_delay_seconds ({base:g})"
            )
        return RetrySettings(
            max_attempts=t.integer("max_attempts", d.max_attempts),
            base_delay_seconds=base,
            max_delay_seconds=cap,
            run_budget=t.integer("run_budget", d.run_budget, minimum=0),
            fail_fast_seconds=t.number("fail_fast_seconds", d.fail_fast_seconds, positive=False),
        )

    def harvest(self, t: _Table) -> HarvestSettings:
        d = HarvestSettings()
        page = t.integer("media_page_size", d.media_page_size)
        if page > _MAX_PAGE_SIZE:
            raise t.error("media_page_size", f"must be <= {_MAX_PAGE_SIZE}, got {page}")
        batch = t.integer("batch_size", d.batch_size, minimum=0)
        if batch > BATCH_MAX_OPS:
            raise t.error("batch_size", f"must be <= {BATCH_MAX_OPS} (Meta's limit), got {batch}")
        totals = t.string("account_totals", d.account_totals)
        if totals not in ACCOUNT_TOTALS:
            raise t.error("account_totals", f"must be one of {', '.join(ACCOUNT_TOTALS)}")
        return HarvestSettings(
            account_totals=totals,
            batch_size=batch,
            stories=t.boolean("stories", d.stories),
            profiles=t.boolean("profiles", d.profiles),
            media_insights=t.boolean("media_insights", d.media_insights),
            media_page_size=page,
            breakdowns=t.boolean("breakdowns", d.breakdowns),
            account_insights=t.boolean("account_insights", d.account_insights),
            lookback_days=t.integer("lookback_days", d.lookback_days),
            facebook_views=t.boolean("facebook_views", d.facebook_views),
            conditional_refusals_in_a_row=t.integer(
                "conditional_refusals_in_a_row", d.conditional_refusals_in_a_row
            ),
            competitor_media=t.integer("competitor_media", d.competitor_media, minimum=0),
        )

    def accounts(
        self, raw: object, sources: _Table, *, discovered: bool = False
    ) -> tuple[Account, ...]:
        """Merge [[accounts]] and the CSV; an id listed twice is an error naming both places.

        With discovery on, listing none is fine: the run finds its accounts through `me/accounts`.
        """
        if raw is not None and not (
            isinstance(raw, list) and all(isinstance(item, dict) for item in raw)
        ):
            raise ConfigError(self.source, "[[accounts]]", "expected an array of tables")
        found: list[Account] = []
        where: dict[str, str] = {}

        def add(place: str, account_id: str, source: tuple[str, str], login: str, key: str) -> None:
            if account_id in where:
                raise ConfigError(
                    self.source, place, f"account {account_id!r} is also at {where[account_id]}"
                )

            def named(name: str) -> str:
                return f"{key}{name}" if key else place  # a CSV row is named by its line

            if login not in LOGINS:
                raise ConfigError(
                    self.source,
                    named("login"),
                    f"{_short(login)} is not one of {', '.join(LOGINS)}",
                )
            where[account_id] = place
            kind, name = source
            if kind == "token_file":
                file, token = self.file_token(named("token_file"), name)
                found.append(
                    Account(account_id, "", token, login=_login(login), token_file=str(file))
                )
            else:
                token = self.env_value(named("token_env"), name)
                found.append(Account(account_id, name, token, login=_login(login)))

        for number, item in enumerate(raw or [], start=1):
            t = _Table(self.source, f"accounts[{number}]", item)
            t.check_keys(_ACCOUNT_KEYS)
            account_id = self.account_id(t, t.data.get("id"))
            token_env = t.optional_string("token_env")
            token_file = t.optional_string("token_file")
            if token_env is not None and token_file is not None:
                raise t.error("token_file", "set token_env or token_file, not both")
            if token_env is None and token_file is None:
                raise t.error("token_env", "missing (the environment variable holding the token)")
            login = t.string("login", "facebook")
            place = f"accounts[{number}]"
            source = ("token_env", token_env) if token_env is not None else ("token_file", "")
            if token_file is not None:
                source = ("token_file", token_file)
            add(place, account_id, (source[0], source[1].strip()), login, f"{place}.")

        csv_name = sources.optional_string("accounts_csv")
        if csv_name is not None:
            for line, account_id, source, login in self.read_csv(sources, csv_name):
                place = f"[sources].accounts_csv line {line}"
                if not _ACCOUNT_ID.fullmatch(account_id):
                    raise ConfigError(
                        self.source, place, f"id {_short(account_id)} is not all digits"
                    )
                add(place, account_id, source, login or "facebook", "")
        if not found and not discovered:
            raise ConfigError(
                self.source,
                "[[accounts]]",
                "no accounts (add [[accounts]] or [sources].accounts_csv)",
            )
        return tuple(found)

    def account_id(self, t: _Table, value: object) -> str:
        if value is None:
            raise t.error("id", "missing (the Instagram professional account id)")
        if not isinstance(value, str):
            raise t.error("id", f"expected a string of digits, got {_type_name(value)} (quote it)")
        if not _ACCOUNT_ID.fullmatch(value.strip()):
            raise t.error("id", f"{_short(value)} is not all digits")
        return value.strip()

    def file_token(self, key: str, name: str) -> tuple[Path, Secret]:
        """The token a `token_file` holds (the file holds only the token), relative to the
        config's folder; a file others may read is a warning, never a value in a message."""
        if not name:
            raise ConfigError(self.source, key, "empty (name the file holding the token)")
        if _looks_like_token(name):
            raise ConfigError(
                self.source, key, "looks like a token, not a file name (value not shown)"
            )
        path = Path(name).expanduser()
        path = Path(os.path.normpath(path if path.is_absolute() else self.base_dir / path))
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(self.source, key, f"file '{path}' not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                self.source, key, f"'{path}' cannot be read ({type(exc).__name__})"
            ) from None
        if not text.strip():
            raise ConfigError(self.source, key, f"'{path}' is empty (it must hold the token)")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "%s: %s: '%s' is readable by others (mode %o); chmod 600 it",
                self.source,
                key,
                path,
                stat.S_IMODE(mode),
            )
        return path, Secret(text.strip())

    def read_csv(self, t: _Table, name: str) -> list[tuple[int, str, tuple[str, str], str]]:
        """Rows of the accounts CSV as (line number, id, (token_env or token_file, its value),
        login or ""); blank lines are skipped."""
        path, text = self.csv_text(t, "accounts_csv", name)
        reader = csv.reader(text.splitlines())
        rows: list[tuple[int, str, tuple[str, str], str]] = []
        header: list[str] = []
        for record in reader:
            cells = [cell.strip() for cell in record]
            if not any(cells):
                continue
            line = reader.line_num
            if not header:
                if [c.lower() for c in cells] not in _CSV_HEADERS:
                    raise ConfigError(
                        self.source,
                        f"[sources].accounts_csv line {line}",
                        "header must be 'id,token_env' (or token_file; then optionally login), "
                        f"got {_short(','.join(cells))}",
                    )
                header = [c.lower() for c in cells]
                continue
            if len(cells) != len(header):
                raise ConfigError(
                    self.source,
                    f"[sources].accounts_csv line {line}",
                    f"expected {len(header)} fields ({','.join(header)}), got {len(cells)}",
                )
            login = cells[2] if len(cells) > 2 else ""
            rows.append((line, cells[0], (header[1], cells[1]), login))
        if not header:
            raise t.error("accounts_csv", f"'{path}' is empty (expected header 'id,token_env')")
        return rows

    def competitors(
        self, raw: object, sources: _Table, owned: set[str] | None
    ) -> tuple[Competitor, ...]:
        """Merge [[competitors]] and the competitors CSV; a username listed twice (in any case)
        is an error naming both places, and so is a `via` that is no configured account
        (`owned`; None when discovery finds the accounts at run time: checked then)."""
        if raw is not None and not (
            isinstance(raw, list) and all(isinstance(item, dict) for item in raw)
        ):
            raise ConfigError(self.source, "[[competitors]]", "expected an array of tables")
        found: list[Competitor] = []
        where: dict[str, str] = {}

        def add(place: str, username: str, via: str | None) -> None:
            def at(field: str) -> str:  # a table's key by name; a CSV line is the place itself
                return f"{place}.{field}" if place.startswith("competitors[") else place

            name = username.strip().removeprefix("@")
            if not _USERNAME.fullmatch(name):
                raise ConfigError(
                    self.source,
                    at("username"),
                    f"{_short(username)} is not an Instagram username "
                    "(letters, digits, '.' and '_', at most 30)",
                )
            key = name.lower()
            if key in where:
                raise ConfigError(
                    self.source, at("username"), f"competitor {key!r} is also at {where[key]}"
                )
            where[key] = place
            if via is not None:
                via = via.strip()
                if not _ACCOUNT_ID.fullmatch(via):
                    raise ConfigError(self.source, at("via"), f"{_short(via)} is not all digits")
                if owned is not None and via not in owned:
                    raise ConfigError(
                        self.source, at("via"), f"account {via!r} is not a configured account"
                    )
            found.append(Competitor(username=key, via=via))

        for number, item in enumerate(raw or [], start=1):
            t = _Table(self.source, f"competitors[{number}]", item)
            t.check_keys(_COMPETITOR_KEYS)
            username = t.optional_string("username")
            if username is None:
                raise t.error("username", "missing (the competitor's Instagram username)")
            place = f"competitors[{number}]"
            add(place, username, t.optional_string("via"))
        csv_name = sources.optional_string("competitors_csv")
        if csv_name is not None:
            for line, cells in self.read_competitors_csv(sources, csv_name):
                place = f"[sources].competitors_csv line {line}"
                add(place, cells[0], cells[1] if len(cells) > 1 and cells[1] else None)
        return tuple(found)

    def read_competitors_csv(self, t: _Table, name: str) -> list[tuple[int, list[str]]]:
        """Rows of the competitors CSV (header `username` or `username,via`) with their line."""
        key = "competitors_csv"
        path, text = self.csv_text(t, key, name)
        reader = csv.reader(text.splitlines())
        header: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for record in reader:
            cells = [cell.strip() for cell in record]
            if not any(cells):
                continue
            line = reader.line_num
            place = f"[sources].{key} line {line}"
            if header is None:
                header = [c.lower() for c in cells]
                if header not in _COMPETITOR_HEADERS:
                    raise ConfigError(
                        self.source,
                        place,
                        f"header must be 'username' or 'username,via', got "
                        f"{_short(','.join(cells))}",
                    )
                continue
            if len(cells) != len(header):
                raise ConfigError(
                    self.source,
                    place,
                    f"expected {len(header)} fields ({','.join(header)}), got {len(cells)}",
                )
            rows.append((line, cells))
        if header is None:
            raise t.error(key, f"'{path}' is empty (expected header 'username[,via]')")
        return rows

    def csv_text(self, t: _Table, key: str, name: str) -> tuple[Path, str]:
        """The path and text of the CSV file `t.key` names (relative to the config's folder)."""
        path = Path(name).expanduser()
        path = path if path.is_absolute() else self.base_dir / path
        try:
            # utf-8-sig: spreadsheets export CSV with a byte-order mark.
            return path, path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise t.error(key, f"file '{path}' not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise t.error(key, f"'{path}' cannot be read ({type(exc).__name__})") from None


def _login(name: str) -> Literal["facebook", "instagram"]:
    return "instagram" if name == "instagram" else "facebook"
