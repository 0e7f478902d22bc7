"""`python -m harvester.simulator`: serve the simulated Graph API until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import date
from pathlib import Path

import orjson

from harvester.simulator.server import run_simulator
from harvester.simulator.settings import (
    FAULT_KINDS,
    FaultSettings,
    LimitSettings,
    SimulatorSettings,
)


def _fault(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND in {', '.join(FAULT_KINDS)}"
        )
    try:
        value = float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number: {rate!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"rate must be within 0..1: {rate!r}")
    return kind, value


def _budget(text: str) -> int:
    """A call budget: a positive count (omit the option for no budget; 0 would divide by zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"budget must be a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"budget must be at least 1 (omit it for none): {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harvester.simulator", description="Serve a simulated Instagram Graph API."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (see --world-out)")
    p.add_argument("--accounts", type=int, default=5)
    p.add_argument("--media", type=int, default=60, help="media per account")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--api-version", default="v25.0", help="served when a path has no version")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--as-of", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    p.add_argument("--app-secret", default=None)
    p.add_argument("--require-proof", action="store_true")
    p.add_argument("--account-budget", type=_budget, default=None)
    p.add_argument("--app-budget", type=_budget, default=None)
    p.add_argument("--token-budget", type=_budget, default=None)
    p.add_argument("--window-seconds", type=float, default=3600.0)
    p.add_argument("--minute-seconds", type=float, default=60.0)
    p.add_argument("--fault-rate", type=_fault, action="append", default=[], metavar="KIND=RATE")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--stall-seconds", type=float, default=30.0)
    p.add_argument("--no-troubles", action="store_true")
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
        request_log=False,
        request_log_file=args.request_log,
        host=args.host,
        port=args.port,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def serve(settings: SimulatorSettings, world_out: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(settings) as sim:
        info = sim.world_info()
        if world_out is not None:
            # Written only once listening, and atomically, so a reader never sees a partial file.
            _write_atomically(world_out, orjson.dumps(info, option=orjson.OPT_INDENT_2))
        print(f"simulated Graph API listening on {sim.base_url}", file=sys.stderr, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        asyncio.run(serve(settings, args.world_out))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
