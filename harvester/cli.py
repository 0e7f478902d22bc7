"""Command line: argv -> config -> anyio.run(run_harvest); progress and summary rendering, no logic.

Exit codes (the README lists them too): 0 done, 1 unexpected failure, 2 bad config or usage,
3 done with error rows, 4 the lake is locked by another writer, 5 stopped early because nothing
works (the endpoint is unreachable, answers only errors, or refuses the app), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import orjson

from harvester.catalog import version_status
from harvester.config import Config, ConfigError, load_config, parse_config
from harvester.graph.errors import NothingWorks
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunCounters, RunReport
from harvester.harvest.routing import metrics_markdown, metrics_table
from harvester.lake.fs import Lake, open_lake
from harvester.lake.jobs import MODES
from harvester.lake.lock import LakeLock, LockError
from harvester.models import Dataset, HarvestWindow
from harvester.progress import ProgressDisplay

log = logging.getLogger("harvester")


class UsageError(Exception):
    """A command line the harvester cannot act on: one line on stderr, exit 2."""


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WITH_ERRORS = 0, 1, 2, 3
EXIT_LOCKED, EXIT_NOTHING_WORKS, EXIT_INTERRUPTED = 4, 5, 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fake-graph"]:
        # Every option after the command belongs to the simulator's own parser.
        from harvester.simulator.__main__ import main as simulator_main

        return int(simulator_main(argv[1:]))
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(json_lines=args.log_json)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as error:
        print(f"harvester: config error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        print(f"harvester: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "harvester: interrupted; committed work is kept, and the same command resumes it",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`harvester metrics | head -1`): nothing left to say.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as error:  # the last line of defence: one readable line, no traceback spam
        cause = _cause(error)
        if isinstance(cause, NothingWorks):  # the endpoint or app is wrong
            print(f"harvester: {cause.message}", file=sys.stderr)
            return EXIT_NOTHING_WORKS
        if isinstance(cause, LockError):  # another writer has the lake
            print(f"harvester: {cause}", file=sys.stderr)
            return EXIT_LOCKED
        log.debug("unexpected failure", exc_info=True)
        print(f"harvester: unexpected failure: {_describe(error)}", file=sys.stderr)
        return EXIT_FAILED


def _cause(error: BaseException) -> BaseException:
    """Unwrap task-group exception groups down to the first real cause."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _describe(error: BaseException) -> str:
    cause = _cause(error)
    return f"{type(cause).__name__}: {cause}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvester", description="Instagram Insights from the Graph API into Parquet."
    )
    parser.add_argument("--log-json", action="store_true", help=_LOG_JSON)
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_SubParser)

    run = commands.add_parser("run", help="harvest the accounts of a config file")
    run.add_argument("config", type=Path)
    _window_args(run)
    run.add_argument(
        "--mode",
        choices=MODES,
        default="backfill",
        help="backfill: everything in the window; sweep: new and recent media since the last run",
    )
    # Pins the snapshot partition (tests, replays); the job's clock stays the real one.
    run.add_argument("--snapshot-date", type=date.fromisoformat, help=argparse.SUPPRESS)
    run.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: shards of accounts on a Ray cluster (harvester[ray])",
    )
    run.add_argument("--ray-address", help="the Ray cluster, e.g. ray://head:10001 (RAY_ADDRESS)")
    run.add_argument("--shards", type=_positive_int, default=4, help="Ray tasks to split into")
    _wait_lock_arg(run)
    run.set_defaults(handler=_cmd_run)

    compact = commands.add_parser("compact", help="merge a lake's small files, atomically")
    compact.add_argument("path", help="the lake: a folder or s3://bucket/prefix")
    compact.add_argument("--dataset", choices=[d.value for d in Dataset])
    compact.add_argument("--date", type=date.fromisoformat, help="one snapshot date only")
    compact.add_argument(
        "--target-mb", type=_positive_float, default=128.0, help="output file size"
    )
    compact.add_argument("--s3-endpoint", help="S3-compatible endpoint (else AWS_ENDPOINT_URL)")
    _wait_lock_arg(compact)
    compact.set_defaults(handler=_cmd_compact)

    doctor = commands.add_parser("doctor", help="list a lake's damaged files; --fix heals them")
    doctor.add_argument("path", help="the lake: a folder or s3://bucket/prefix")
    doctor.add_argument("--fix", action="store_true", help="quarantine and heal what is found")
    doctor.add_argument("--s3-endpoint", help="S3-compatible endpoint (else AWS_ENDPOINT_URL)")
    _wait_lock_arg(doctor)
    doctor.set_defaults(handler=_cmd_doctor)

    plan = commands.add_parser("plan", help="list what a run would do and what it would cost")
    plan.add_argument("config", type=Path)
    _window_args(plan)
    plan.set_defaults(handler=_cmd_plan)

    demo = commands.add_parser("demo", help="harvest the built-in simulated Graph API")
    demo.add_argument("--accounts", type=_positive_int, default=50)
    demo.add_argument("--media", type=_positive_int, default=200, help="media per account")
    demo.add_argument("--out", type=Path, default=Path("demo-lake"), help="lake folder")
    demo.add_argument("--api-version", default="v25.0")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_cmd_demo)

    # Dispatched in main() before parsing; listed here so that --help shows it.
    commands.add_parser("fake-graph", help="serve the simulated Graph API (fake-graph --help)")

    metrics = commands.add_parser("metrics", help="print the metric routing table of a version")
    metrics.add_argument("--api-version", default="v25.0")
    metrics.add_argument("--markdown", action="store_true", help="print a Markdown table")
    metrics.add_argument(
        "--probe",
        type=Path,
        metavar="CONFIG",
        help="ask Meta's own metric lists with CONFIG's first usable token and print how the "
        "catalogue differs at CONFIG's version (exit 3 when it does, or nothing was compared)",
    )
    metrics.set_defaults(handler=_cmd_metrics)

    check = commands.add_parser("check", help="check the config and every account's token")
    check.add_argument("config", type=Path)
    # The date the version's expiry is judged at (tests; default today, UTC).
    check.add_argument("--today", type=date.fromisoformat, help=argparse.SUPPRESS)
    check.set_defaults(handler=_cmd_check)

    webhook = commands.add_parser("webhook", help="receive story_insights webhooks into the lake")
    webhook.add_argument("config", type=Path)
    webhook.add_argument("--host", default="0.0.0.0", help="address to listen on")
    webhook.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    webhook.set_defaults(handler=_cmd_webhook)

    token = commands.add_parser("token", help="keep Instagram Login tokens alive (token refresh)")
    token_commands = token.add_subparsers(required=True, metavar="ACTION", parser_class=_SubParser)
    refresh = token_commands.add_parser(
        "refresh",
        help="refresh every Instagram Login token at least 24 h old into its token_file",
    )
    refresh.add_argument("config", type=Path)
    refresh.add_argument("--account", metavar="ID", help="refresh this account only")
    refresh.set_defaults(handler=_cmd_token_refresh)
    return parser


def _cmd_token_refresh(args: argparse.Namespace) -> int:
    """Exit 0 when every token was refreshed or is not due, 3 when any failed. Prints each
    account's outcome and new expiry, never a token."""
    from harvester.graph.instagram import refresh_tokens

    config = load_config(args.config, writing=False)
    accounts = [a for a in config.accounts if args.account in (None, a.id)]
    if not accounts:
        raise UsageError(f"account {args.account} is not in {args.config}")
    results = anyio.run(partial(refresh_tokens, config, accounts))
    width = max(len(r.account_id) for r in results)
    for result in results:
        print(f"{result.account_id:<{width}}  {result.outcome:<9}  {result.detail}")
    failed = sum(r.outcome == "failed" for r in results)
    if failed:
        print(f"{failed} of {len(results)} tokens not refreshed", file=sys.stderr)
        return EXIT_WITH_ERRORS
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every account is usable (warnings allowed), 3 when any is not."""
    from harvester.graph.tokens import render_table, run_preflight

    config = load_config(args.config, writing=False)
    print(f"{args.config}: config OK ({len(config.accounts)} accounts)")
    # The run's own warning (harvest.pipeline), here before a run would meet it.
    today = args.today or datetime.now(UTC).date()
    if not (version := version_status(config.graph.api_version, today)).ok:
        print(f"warning: [graph] api_version: {version.message}")
    checks = anyio.run(run_preflight, config)
    print(render_table(checks))
    unusable = sum(not c.usable for c in checks)
    if unusable:
        print(f"{unusable} of {len(checks)} accounts unusable", file=sys.stderr)
        return EXIT_WITH_ERRORS
    return EXIT_OK


def _cmd_webhook(args: argparse.Namespace) -> int:
    from harvester.harvest.webhook import WebhookStatistics, run_webhook

    config = load_config(args.config)
    if instagram := [a.id for a in config.accounts if a.login == "instagram"]:
        print(
            "harvester: note: Meta sends no story_insights webhooks for Instagram Login accounts "
            f"({', '.join(instagram)}); their stories' insights come from `harvester run` only",
            file=sys.stderr,
        )
    listening: list[str] = []

    def ready(url: str) -> None:
        listening.append(url)
        print(f"harvester: story_insights webhook listening on {url}", file=sys.stderr, flush=True)

    async def serve() -> WebhookStatistics:
        return await run_webhook(config, host=args.host, port=args.port, on_ready=ready)

    try:
        stats = anyio.run(serve)
    except Exception as error:
        cause = _cause(error)
        if listening or not isinstance(cause, OSError):
            raise
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {cause.strerror}") from None
    print(
        f"harvester: webhook stopped; {stats.events_accepted} events accepted, "
        f"{stats.rows_written} rows in {stats.files_written} files, "
        f"{stats.bad_signatures} bad signatures, {stats.malformed} malformed",
        file=sys.stderr,
    )
    return EXIT_OK if not stats.rows_pending else EXIT_FAILED


def _window_args(parser: argparse.ArgumentParser) -> None:
    # Account insights use the same window; without one they take the last 30 days.
    parser.add_argument(
        "--since", type=_date_arg, help="first media/insights date (YYYY-MM-DD, UTC)"
    )
    parser.add_argument(
        "--until", type=_date_arg, help="media/insights before this date (YYYY-MM-DD)"
    )


def _window(args: argparse.Namespace) -> HarvestWindow:
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise UsageError(
            f"--since {args.since:%Y-%m-%d} is not before --until {args.until:%Y-%m-%d}: "
            "the window [since, until) is empty"
        )
    return HarvestWindow(args.since, args.until)


def _wait_lock_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-lock",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="when another writer holds the lake, wait this long for it (default: refuse, exit 4)",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    if args.mode == "sweep" and (args.since or args.until):
        raise UsageError("a sweep takes no --since/--until: its windows come from the lake")
    window = _window(args)
    config = load_config(args.config)
    options: dict[str, Any] = {
        "mode": args.mode,
        "snapshot_date": args.snapshot_date,
        "lock_wait": args.wait_lock,
    }
    if args.engine == "ray":
        try:
            from harvester.harvest.ray_engine import run_on_ray
        except ImportError as error:
            raise UsageError(f"--engine ray needs harvester[ray] ({error})") from None
        options.update(runner=run_on_ray, shards=args.shards, address=args.ray_address)
    return _harvest(config, window, json_logs=args.log_json, **options)


def _cmd_compact(args: argparse.Namespace) -> int:
    from harvester.lake.compact import compact

    lake = _existing_lake(args.path, args.s3_endpoint)
    with _lake_lock(lake, "compact", args.wait_lock) as lock:
        report = compact(
            lake,
            dataset=Dataset(args.dataset) if args.dataset else None,
            snapshot_date=args.date.isoformat() if args.date else None,
            target_mb=args.target_mb,
            guard=lock.check,
        )
    for output, inputs, rows in report.merged:
        print(f"{output}: {inputs} files merged, {rows:,} rows")
    for partition, why in report.skipped:
        print(f"{partition}: skipped, {why}", file=sys.stderr)
    if not report.merged:
        print("nothing to compact")
    return EXIT_OK


def _existing_lake(path: str, s3_endpoint: str | None) -> Lake:
    """The lake at `path` for a command that reads or rewrites one; any other path is an error
    (rather than "nothing to do")."""
    lake = open_lake(path, s3_endpoint=s3_endpoint)
    if not lake.is_lake():
        raise UsageError(f"{path}: not a harvester lake (no _runs, _state or dataset folder)")
    return lake


@contextmanager
def _lake_lock(lake: Lake, command: str, wait: float) -> Iterator[LakeLock]:
    """The lake's one-writer lock for a command without a config (compact, doctor --fix): the
    default expiry, which its claim states, so runs configured otherwise still agree on it."""
    from harvester.config import OutputSettings
    from harvester.harvest.pipeline import new_run_id
    from harvester.lake.lock import holding_sync

    stale = OutputSettings.lock_stale_seconds
    lock = LakeLock(lake, run_id=new_run_id(), command=command, stale_seconds=stale)
    with holding_sync(lock, wait=wait):
        yield lock


def _cmd_doctor(args: argparse.Namespace) -> int:
    """Exit 3 when damage was found (without --fix, or left for a person), 0 when healthy or
    healed, 2 when the path holds no lake."""
    from harvester.lake.doctor import examine, heal

    lake = _existing_lake(args.path, args.s3_endpoint)
    if args.fix:  # heals the lake: a writer, so it waits its turn as compact does
        with _lake_lock(lake, "doctor", args.wait_lock):
            found = heal(lake, by="doctor", reports=True)
    else:
        found = examine(lake)
    for damage in found:
        print(damage.line())
    print(f"{len(found)} damaged files" + (", healed" if args.fix and found else ""))
    return EXIT_WITH_ERRORS if any(not d.healed or not args.fix for d in found) else EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from harvester.harvest.plan import make_plan

    window = _window(args)
    config = load_config(args.config, writing=False)
    plan = anyio.run(make_plan, config, window)
    print(plan.render())
    return EXIT_WITH_ERRORS if any(p.problem for p in plan.accounts) else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from harvester.simulator import SimulatorSettings, run_simulator

    settings = SimulatorSettings(
        seed=args.seed,
        accounts=args.accounts,
        media_per_account=args.media,
        api_version=args.api_version,
        request_log=False,
    )
    out = args.out.resolve()
    result: dict[str, Any] = {}

    async def demo() -> None:
        async with run_simulator(settings) as sim:
            toml_text, parse_args = demo_config(sim.world_info(), out)
            log.info("simulated Graph API on %s with %d accounts", sim.base_url, args.accounts)
            config = parse_config(toml_text, **parse_args)
            result["report"] = await _run_with_progress(config, json_logs=args.log_json)

    anyio.run(demo)
    report: RunReport = result["report"]
    query = (
        "SELECT media_product_type, metric, count(*) AS n, sum(value) AS total "
        f"FROM read_parquet('{out}/media_insights/**/*.parquet', hive_partitioning=true) "
        "GROUP BY ALL ORDER BY ALL"
    )
    try:
        import duckdb  # noqa: F401  (only to tell whether the hint runs as printed)

        install = ""
    except ImportError:
        install = "python -m pip install duckdb && "
    # max_rows: DuckDB elides the middle of a longer result, and the demo's catalogue is ~40 rows.
    command = f'python -c "import duckdb; duckdb.sql(\\"{query}\\").show(max_rows=100)"'
    print(f"\nTry it in DuckDB:\n  {install}{command}")
    # The simulated world plants troubles (an expired token, refused metrics) that the summary
    # shows as error rows; they are the demo working, so it exits 0 unless the run itself failed.
    return EXIT_OK if report.exit_code == EXIT_WITH_ERRORS else report.exit_code


def demo_config(
    world: Mapping[str, Any],
    out: Path,
    settings: Mapping[str, Mapping[str, str | int | float | bool]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """A config (TOML text) for a simulated world, and `parse_config`'s other arguments with the
    env holding the simulated tokens, as a user would set them up. `settings` adds keys by table."""
    tables: dict[str, dict[str, str | int | float | bool]] = {
        "graph": {"base_url": world["base_url"], "api_version": world["api_version"]},
        "output": {"path": out.as_posix()},
    }
    if world.get("instagram_base_url"):
        tables["graph"]["instagram_base_url"] = world["instagram_base_url"]
    for table, values in (settings or {}).items():
        tables.setdefault(table, {}).update(values)
    lines: list[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in values.items()]
    env: dict[str, str] = {}
    for i, account in enumerate(world["accounts"]):
        lines += ["[[accounts]]", f'id = "{account["id"]}"', f'token_env = "DEMO_TOKEN_{i}"']
        if account.get("login", "facebook") != "facebook":
            lines.append(f'login = "{account["login"]}"')
        env[f"DEMO_TOKEN_{i}"] = account["token"]
    kwargs = {"source": "demo", "base_dir": Path(tempfile.gettempdir()), "env": env}
    return "\n".join(lines) + "\n", kwargs


def _cmd_metrics(args: argparse.Namespace) -> int:
    if args.probe is not None:
        return _cmd_probe(args.probe)
    try:
        rows = metrics_table(args.api_version)
    except ValueError as error:
        raise UsageError(f"--api-version: {error}") from None
    if args.markdown:
        print(metrics_markdown(args.api_version), end="")
        return EXIT_OK
    width = max((len(kind) for kind, _, _, _ in rows), default=4)
    print(f"{'kind':<{width}}  metric  [login]  (details) at {args.api_version}")
    for kind, metric, login, detail in rows:
        print(f"{kind:<{width}}  {metric}  [{login}]  ({detail})")
    return EXIT_OK


def _cmd_probe(path: Path) -> int:
    """Exit 0 when Meta's lists match the catalogue, 3 when any kind differs or none could be
    compared."""
    from harvester.harvest.probe import probe_catalog

    report = anyio.run(probe_catalog, load_config(path, writing=False))
    print(
        f"probe at {report.api_version} ({report.login} login) with account "
        f"{report.account_id or '-'}: {report.calls} calls"
    )
    for kind in report.kinds:
        if kind.listed is None:
            print(f"{kind.kind:<8}  not probed: {kind.note}")
            continue
        print(f"{kind.kind:<8}  {'differs' if kind.differs else 'same'} (asked on {kind.asked_on})")
        if kind.missing:
            print(f"{'':<8}  Meta offers, the catalogue lacks: {', '.join(kind.missing)}")
        if kind.stale:
            print(f"{'':<8}  the catalogue asks, Meta no longer lists: {', '.join(kind.stale)}")
    if report.unprobed is not None:
        print(f"harvester: probe compared nothing: {report.unprobed}", file=sys.stderr)
        return EXIT_WITH_ERRORS
    return EXIT_WITH_ERRORS if report.differs else EXIT_OK


def _harvest(config: Config, window: HarvestWindow, **options: Any) -> int:
    report = anyio.run(partial(_run_with_progress, config, window, **options))
    return report.exit_code


async def _run_with_progress(
    config: Config,
    window: HarvestWindow | None = None,
    runner: Callable[..., Awaitable[RunReport]] = run_harvest,
    json_logs: bool = False,
    **options: Any,
) -> RunReport:
    counters = RunCounters()
    display = ProgressDisplay(counters, interactive=sys.stderr.isatty() and not json_logs)
    interrupted: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(display.run)
        tg.start_soon(_stop_on_signal, tg.cancel_scope, interrupted)
        try:
            report = await runner(
                config, window=window or HarvestWindow(), counters=counters, **options
            )
        finally:
            tg.cancel_scope.cancel()
    if interrupted:
        # The run committed what its sink held and wrote its manifest while being cancelled.
        raise KeyboardInterrupt
    if not json_logs:  # a scheduler reads the report from the log line and from _runs/
        display.summary(report, lake=config.output.path)
    log.info(
        "run %s finished: %d error rows",
        report.run_id,
        report.error_rows,
        extra={"report": orjson.loads(report.to_json())},
    )
    return report


async def _stop_on_signal(scope: anyio.CancelScope, received: list[int]) -> None:
    """SIGINT or SIGTERM cancels the run, whose cleanup commits and records what it holds."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            received.append(signum)
            scope.cancel()
            return


def _setup_logging(*, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else logging.Formatter("%(message)s"))
    root = logging.getLogger("harvester")
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("HARVESTER_LOG_LEVEL", "INFO"))
    root.propagate = False


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        for key in ("report", "progress"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return orjson.dumps(entry).decode()


_LOG_JSON = "log JSON lines on stderr and print no summary on stdout (for schedulers)"
# Global flags, accepted after the command too (`harvester run my.toml --log-json`); SUPPRESS
# keeps a subcommand from resetting what was given before it.
_COMMON = argparse.ArgumentParser(add_help=False)
_COMMON.add_argument("--log-json", action="store_true", default=argparse.SUPPRESS, help=_LOG_JSON)


class _SubParser(argparse.ArgumentParser):
    """A subcommand's parser: takes the global flags as well (see `_parser`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "parents" not in kwargs and kwargs.get("add_help", True):
            kwargs["parents"] = [_COMMON]
        super().__init__(*args, **kwargs)


def _number(convert: Callable[[str], float], low: float, high: float | None = None) -> Any:
    """An argparse type: `convert` the text and keep it in [low, high] (above 0 when low is 0
    and no high is given, as for sizes and counts), else one line naming the value."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if high is None and not value > low:
            raise argparse.ArgumentTypeError(f"{text} is not a positive number")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not within {low:g}..{high:g}")
        return value

    return parse


_positive_int = _number(int, 0)
_positive_float = _number(float, 0.0)
_port = _number(int, 0, 65535)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _date_arg(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-01-31") from None
