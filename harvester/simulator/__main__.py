"""`python -m harvester.simulator`: serve the simulated Graph API until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import signal
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from harvester.simulator.server import run_simulator
from harvester.simulator.settings import (
    FAULT_KINDS,
    FaultSettings,
    LimitSettings,
    SimulatorSettings,
)
from harvester.simulator.validity import KIND_GROUPS, LOGINS


def _number(
    convert: Callable[[str], float], what: str, low: float, high: float = math.inf, hint: str = ""
) -> Callable[[str], Any]:
    """An argparse type: `convert` the text and keep it within [low, high], else one line."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            kind = "whole number" if convert is int else "number"
            raise argparse.ArgumentTypeError(f"{what} must be a {kind}: {text!r}") from None
        if not low <= value <= high:
            bounds = f"at least {low:g}" if high == math.inf else f"within {low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"{what} must be {bounds}{hint}: {text!r}")
        return value

    return parse


_rate = _number(float, "rate", 0.0, 1.0)
# A call budget is a positive count (omit the option for no budget; 0 would divide by zero).
_budget = _number(int, "budget", 1, hint=" (omit it for none)")
_port = _number(int, "port", 0, 65535)
_count = _number(int, "count", 1)
_seconds = _number(float, "value", 0.0)


def _fault(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND in {', '.join(FAULT_KINDS)}"
        )
    return kind, _rate(rate)


def _extra(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("=")
    kinds = (*KIND_GROUPS, "ACCOUNT")
    if not sep or kind.upper() not in kinds or not name.strip():
        raise argparse.ArgumentTypeError(f"expected KIND=NAME with KIND in {', '.join(kinds)}")
    return kind.upper(), name.strip()


def _withdrawn(text: str) -> tuple[str, str]:
    metric, sep, key = text.partition("=")
    if not sep or not metric.strip() or not key.strip():
        raise argparse.ArgumentTypeError("expected METRIC=KEY, e.g. views=media_product_type")
    return metric.strip(), key.strip()


# What each injected fault does to a request it hits (--fault-rate KIND=RATE).
FAULT_HELP = {
    "server_error": "HTTP 500/503 with Meta's transient error envelope (codes 1, 2)",
    "html_error": "HTTP 502/503 with an HTML page instead of JSON",
    "truncated_json": "the reply's JSON body cut in half",
    "dropped_connection": "the connection closes before any reply",
    "stall": "no reply for --stall-seconds (exercises the client's timeout)",
    "batch_null": "a batch op answered with null (Meta's 'ask again alone')",
}


def build_parser() -> argparse.ArgumentParser:
    faults = "\n".join(f"  {kind:<19}{FAULT_HELP[kind]}" for kind in FAULT_KINDS)
    p = argparse.ArgumentParser(
        prog="harvester fake-graph",
        description="Serve a simulated Instagram Graph API on loopback until SIGINT or SIGTERM.",
        epilog=f"fault kinds for --fault-rate KIND=RATE (RATE 0..1, per request):\n{faults}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=_port, default=0, help="0 picks a free port (see --world-out)")
    p.add_argument("--accounts", type=_count, default=5, help="business accounts (default 5)")
    p.add_argument("--media", type=_count, default=60, help="media per account (default 60)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same world (default 7)")
    p.add_argument(
        "--api-version", default="v25.0", help="served when a path has no version (%(default)s)"
    )
    p.add_argument(
        "--latency-ms", type=_seconds, default=0.0, help="added to every reply (default 0)"
    )
    p.add_argument(
        "--jitter-ms", type=_seconds, default=0.0, help="uniform extra latency up to this"
    )
    p.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the day Meta's dated rules apply on: removals, all-version additions, version "
        "expiry (an expired version is served as the oldest available one); default: none, "
        "every version as lenient as it ever was",
    )
    p.add_argument("--app-secret", default=None, help="the app secret appsecret_proof uses")
    p.add_argument(
        "--require-proof",
        action="store_true",
        help="refuse calls without appsecret_proof (needs --app-secret)",
    )
    p.add_argument(
        "--account-budget", type=_budget, default=None, help="calls per account per window (BUC)"
    )
    p.add_argument(
        "--app-budget", type=_budget, default=None, help="calls per app per window (platform)"
    )
    p.add_argument("--token-budget", type=_budget, default=None, help="calls per token per window")
    p.add_argument(
        "--window-seconds",
        type=_seconds,
        default=3600.0,
        help="length of the budgets' sliding window (default 3600)",
    )
    p.add_argument(
        "--minute-seconds",
        type=_seconds,
        default=60.0,
        help="real seconds per minute of estimated_time_to_regain_access (default 60)",
    )
    p.add_argument(
        "--fault-rate",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="inject a fault kind (listed below) into this share of requests; repeatable",
    )
    p.add_argument("--fault-seed", type=int, default=0, help="same seed, same faults (default 0)")
    p.add_argument(
        "--stall-seconds", type=_seconds, default=30.0, help="how long a stall lasts (default 30)"
    )
    p.add_argument(
        "--no-troubles",
        action="store_true",
        help="plant no token troubles, unavailable or pre-conversion media (a clean world)",
    )
    p.add_argument(
        "--login",
        choices=LOGINS,
        default="facebook",
        help="whose metric set to serve: total_likes, total_comments, total_views and "
        "link_clicks exist with Facebook Login only (default %(default)s)",
    )
    p.add_argument(
        "--instagram-accounts",
        type=int,
        default=0,
        metavar="N",
        help="the first N accounts use Instagram Login: IGAA tokens, served on the Instagram "
        "host (its own port, see --world-out) with the Instagram Login metric set (default 0)",
    )
    p.add_argument(
        "--instagram-batch",
        action="store_true",
        help="let the Instagram host take Graph batch POSTs (unconfirmed at Meta; by default "
        "it refuses them)",
    )
    p.add_argument(
        "--instagram-token-age-hours",
        type=_seconds,
        default=48.0,
        help="age of the Instagram Login tokens when the world starts; under 24 Meta refuses "
        "to refresh them (default 48)",
    )
    p.add_argument(
        "--instagram-port", type=int, default=0, help="the Instagram host's port (0: any free)"
    )
    p.add_argument(
        "--extra-metric",
        type=_extra,
        action="append",
        default=[],
        metavar="KIND=NAME",
        help="offer a metric Meta's tables lack (KIND: PHOTO, VIDEO, CAROUSEL, REEL, STORY, "
        "FEED, REELS or ACCOUNT), served with values and listed in the unknown-metric error, "
        "e.g. REELS=reels_new_thing for a catalogue probe; repeatable",
    )
    p.add_argument(
        "--legacy-video-refusals",
        action="store_true",
        help="let some FEED videos posted before 2024 refuse total_interactions, likes and "
        "comments ('Incompatible metric'), as some legacy videos do at Meta",
    )
    p.add_argument(
        "--withdraw-breakdown",
        type=_withdrawn,
        action="append",
        default=[],
        metavar="METRIC=KEY",
        help="refuse an account metric's breakdown Meta's tables offer, as after Meta withdraws "
        "one, e.g. views=media_product_type; repeatable",
    )
    p.add_argument(
        "--competitors",
        type=int,
        default=0,
        help="competitor accounts competitor_0 ... (seen through business discovery; default 0)",
    )
    p.add_argument("--request-log", type=Path, default=None, help="append a JSONL request log")
    p.add_argument("--world-out", type=Path, default=None, help="write world info once listening")
    return p


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    faults = FaultSettings(
        **dict(args.fault_rate), seed=args.fault_seed, stall_seconds=args.stall_seconds
    )
    limits = LimitSettings(
        account_budget=args.account_budget,
        app_budget=args.app_budget,
        token_budget=args.token_budget,
        window_seconds=args.window_seconds,
        minute_seconds=args.minute_seconds,
    )
    extra: dict[str, tuple[str, ...]] = {}
    for kind, name in args.extra_metric:
        extra[kind] = (*extra.get(kind, ()), name)
    return SimulatorSettings(
        seed=args.seed,
        accounts=args.accounts,
        media_per_account=args.media,
        api_version=args.api_version,
        as_of=args.as_of,
        app_secret=args.app_secret,
        require_appsecret_proof=args.require_proof,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.jitter_ms,
        faults=faults,
        limits=limits,
        troubles=not args.no_troubles,
        login=args.login,
        instagram_accounts=args.instagram_accounts,
        instagram_batch=args.instagram_batch,
        instagram_token_age_hours=args.instagram_token_age_hours,
        instagram_port=args.instagram_port,
        extra_metrics=extra,
        legacy_video_refusals=args.legacy_video_refusals,
        withdrawn_breakdowns=frozenset(args.withdraw_breakdown),
        competitors=args.competitors,
        request_log=False,
        request_log_file=args.request_log,
        host=args.host,
        port=args.port,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# Allocations between collections of the youngest GC generation while serving (CPython: 700).
GC_YOUNG_THRESHOLD = 10_000


def _tune_gc() -> None:
    """For a simulator process of its own: the world and the modules alive at start are frozen,
    so full collections stop walking them again, and the youngest generation is collected less
    often, as a reply's objects (acyclic, freed by refcount once sent) then die before a
    collection walks them. Under the whole-job benchmark collections were ~30 % of the account
    insights replies' CPU."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def serve(settings: SimulatorSettings, world_out: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(settings) as sim:
        _tune_gc()
        info = sim.world_info()
        if world_out is not None:
            # Written only once listening, and atomically, so a reader never sees a partial file.
            _write_atomically(world_out, orjson.dumps(info, option=orjson.OPT_INDENT_2))
        print(
            f"simulated Graph API listening on {sim.base_url} "
            f"(Instagram host: {sim.instagram_base_url})",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        asyncio.run(serve(settings, args.world_out))
    except (ValueError, OSError, OverflowError) as exc:
        print(f"harvester fake-graph: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
