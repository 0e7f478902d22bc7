"""How much of Meta's per-account budget does the harvester use, and how often does it trip it?

N accounts each get a Business-Use-Case budget of R calls per sliding window of W seconds in the
simulator (its own process). The harvester knows nothing of R or W: it paces on the usage headers
alone. In a sliding window call k can go no earlier than W after call k - R, so n calls to one
account need at least W * floor((n - 1) / R) seconds; an account's *use* is that minimum over the
time it really took (first call to last).

    python benchmarks/rate_limit_use.py --accounts 50 --budget 200 --window 20 --media 250

Meta's windows are an hour or a day; here they are seconds, so the harvester's time knobs are scaled
by the same factor (W / 3600): probe interval, its maximum, the length of Meta's "minute", and the
window it models (`account_window_seconds`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest

THROTTLE_CODES = {4, 17, 32, 613, 80001, 80002}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--budget", type=int, default=200, help="calls per window per account")
    parser.add_argument("--window", type=float, default=20.0, help="window length, seconds")
    parser.add_argument("--media", type=int, default=250, help="media per account")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rate_limit_use.json").write_text(json.dumps(result, indent=2) + "\n")


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    scale = args.window / 3600  # Meta's BUC window is rolling; an hour is the conservative case
    minute = 60 * scale
    world_file, log_file = tmp / "world.json", tmp / "requests.jsonl"
    command = [
        sys.executable, "-m", "harvester.simulator", "--port", "0", "--no-troubles",
        "--accounts", str(args.accounts), "--media", str(args.media),
        "--latency-ms", str(args.latency_ms), "--account-budget", str(args.budget),
        "--window-seconds", str(args.window), "--minute-seconds", str(minute),
        "--request-log", str(log_file), "--world-out", str(world_file),
    ]  # fmt: skip
    sim = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not world_file.exists():  # the simulator writes it once it listens
            if sim.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.05)
        world = json.loads(world_file.read_text())
        settings = {
            # Media insights only: account insights go one request at a time per account, so
            # their pace is set by latency, not by the budget this measures.
            "harvest": {"account_insights": False},
            "limits": {
                "regain_unit_seconds": minute,
                "probe_seconds": 5.0 * scale,
                "probe_max_seconds": 300.0 * scale,
                "account_window_seconds": args.window,
                # A burst wider than the budget's headroom above the slow-down mark (25 %) could
                # overshoot before the first usage header returns; real budgets are far larger.
                "max_requests_per_account": max(1, args.budget // 8),
            },
        }
        toml_text, kwargs = demo_config(world, tmp / "lake", settings)
        started = time.perf_counter()
        report = anyio.run(run_harvest, parse_config(toml_text, **kwargs))
        wall = time.perf_counter() - started
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return summarize(args, log_file, wall, report.requests)


def summarize(
    args: argparse.Namespace, log_file: Path, wall: float, requests: int
) -> dict[str, Any]:
    calls: defaultdict[str, list[float]] = defaultdict(list)
    throttled = 0
    for line in log_file.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("error_code") in THROTTLE_CODES:
            throttled += 1
        elif entry.get("account_id"):
            calls[entry["account_id"]].append(entry["t"])
    uses = []
    for times in calls.values():
        n, took = len(times), max(times) - min(times)
        if n > args.budget and took > 0:
            uses.append(args.window * ((n - 1) // args.budget) / took)
    uses.sort()
    return {
        "accounts": args.accounts,
        "budget_calls_per_window": args.budget,
        "window_seconds": args.window,
        "media_per_account": args.media,
        "calls_per_account_mean": round(sum(map(len, calls.values())) / max(len(calls), 1), 1),
        "budget_use_mean": round(sum(uses) / max(len(uses), 1), 4),
        "budget_use_min": round(uses[0], 4) if uses else None,
        "budget_use_median": round(uses[len(uses) // 2], 4) if uses else None,
        "limit_errors": throttled,
        "harvester_requests": requests,
        "wall_seconds": round(wall, 2),
    }


if __name__ == "__main__":
    main()
