"""One harvester run against a running simulator, in this process; prints one JSON line of figures.

Run by `run.py` and `rss_scaling.py` in a process of its own, so CPU time and peak RSS belong to
this harvest alone (the simulator runs elsewhere):

    python benchmarks/harvest_variant.py --world WORLD.json --accounts 10 --batch-size 50
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa

from harvester.config import HarvestSettings, parse_config
from harvester.harvest.pipeline import run_harvest

# The key the lead adds for Graph batch requests ([harvest] batch_size, 0 = no batching).
BATCH_KEY = "batch_size"


def _harvest_keys() -> set[str]:
    return {f.name for f in fields(HarvestSettings)}


def batching_wired() -> bool:
    return BATCH_KEY in _harvest_keys()


def config_text(
    world: dict[str, Any],
    accounts: int,
    out: Path,
    batch_size: int | None,
    *,
    whole_job: bool = False,
    account_insights: bool = True,
    facebook_views: bool = True,
) -> str:
    """The run's TOML. Only media insights are harvested: the SDK baseline, like most user
    scripts, walks the /media edge and nothing else, and every variant must do the same work.
    `whole_job`: the default job instead (media, stories and account insights at the default
    30-day window), what `harvester run` does unless told otherwise; with `account_insights`
    false, the same job without them (what the whole job is held against)."""
    lines = [
        "[graph]",
        f'base_url = "{world["base_url"]}"',
        f'api_version = "{world["api_version"]}"',
        "[output]",
        f'path = "{out.as_posix()}"',
        "[harvest]",
    ]
    keys = _harvest_keys()
    if not whole_job:
        lines += [f"{key} = false" for key in ("stories", "account_insights") if key in keys]
    elif not account_insights:
        lines.append("account_insights = false")
    if not facebook_views:
        lines.append("facebook_views = false")
    if batch_size is not None and BATCH_KEY in keys:
        lines.append(f"{BATCH_KEY} = {batch_size}")
    for i in range(accounts):
        lines += ["[[accounts]]", f'id = "{world["accounts"][i]["id"]}"', f'token_env = "T{i}"']
    return "\n".join(lines) + "\n"


class RssSampler:
    """Samples this process's resident set and Arrow's allocated bytes every `interval` s:
    ru_maxrss keeps only the peak, and a flat curve is the claim to check."""

    def __init__(self, interval: float = 0.5) -> None:
        self.samples: list[tuple[float, int]] = []
        self.arrow_samples: list[int] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with open("/proc/self/statm") as statm:
                pages = int(statm.read().split()[1])
            self.samples.append((round(time.perf_counter() - self._t0, 2), pages * 4))
            self.arrow_samples.append(pa.total_allocated_bytes() // 1024)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=None, help="omit: the config default")
    parser.add_argument("--rss-samples", action="store_true")
    parser.add_argument("--whole-job", action="store_true", help="stories and account insights too")
    parser.add_argument("--without-account-insights", action="store_true", help="with --whole-job")
    parser.add_argument(
        "--without-facebook-views",
        action="store_true",
        help="facebook_views = false: no conditional ops, the same ops as the codec floor",
    )
    args = parser.parse_args()
    world = json.loads(args.world.read_text())
    env = {f"T{i}": world["accounts"][i]["token"] for i in range(args.accounts)}
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as lake:
        text = config_text(
            world,
            args.accounts,
            Path(lake),
            args.batch_size,
            whole_job=args.whole_job,
            account_insights=not args.without_account_insights,
            facebook_views=not args.without_facebook_views,
        )
        config = parse_config(text, source="bench", base_dir=Path(lake), env=env)
        t0, c0 = time.perf_counter(), time.process_time()
        with RssSampler() as sampler:
            report = anyio.run(run_harvest, config)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    result: dict[str, Any] = {
        "media": report.media_listed,
        "rows": report.rows.get("media_insights", 0),
        "account_rows": report.rows.get("account_insights", 0),
        "error_rows": report.rows.get("errors", 0),
        "client_requests": report.requests,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "batching_wired": batching_wired(),
    }
    if args.rss_samples:
        result["rss_samples_kb"] = sampler.samples
        result["arrow_samples_kb"] = sampler.arrow_samples
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
