"""Calls per media before and after the conditional metrics (crossposted_views, facebook_views).

Counts, not speed: the simulator runs in this process on loopback (its counters are exact either
way). One v27.0 world with reels, stories and 30 % of media shared to Facebook; each row is one
harvest of media insights (no account insights), single GETs or batch POSTs of 50:
- before: `[harvest] facebook_views = false` (what the harvester asked until this change);
- after: the default (one extra call per media, K = 10 refusals in a row stop an account);
- after, K = 1000: no account stops, so every shared media gets its metrics;
- never shared: a world where no media is shared (`shared_to_facebook_percent = 0`), default K.

    python benchmarks/conditional_calls.py --accounts 10 --media 200

Writes results/conditional_calls.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pyarrow.dataset as ds

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.simulator import SimulatorSettings, run_simulator
from harvester.simulator.validity import SHARED_TO_FACEBOOK_ONLY

VERSION = "v27.0"
RESULTS = Path(__file__).resolve().parent / "results" / "conditional_calls.json"
CASES: list[tuple[str, dict[str, Any], int]] = [
    ("before (facebook_views = false)", {"facebook_views": False}, 30),
    ("after (K = 10, default)", {}, 30),
    ("after (K = 1000)", {"conditional_refusals_in_a_row": 1000}, 30),
    ("after, never shared (K = 10)", {}, 0),
]


async def one(
    accounts: int, media: int, batch_size: int, harvest: dict[str, Any], shared_percent: int
) -> dict[str, Any]:
    settings = SimulatorSettings(
        seed=3,
        accounts=accounts,
        media_per_account=media,
        troubles=False,
        api_version=VERSION,
        request_log=False,
        shared_to_facebook_percent=shared_percent,
    )
    async with run_simulator(settings) as sim:
        world = sim.world
        harvested = [
            m for a in world.accounts for m in [*world.iter_media(a.id), *world.stories(a.id)]
        ]
        shared = {m.id for m in harvested if world.shared_to_facebook(m)}
        with tempfile.TemporaryDirectory() as lake:
            table = {"account_insights": False, "batch_size": batch_size, **harvest}
            toml_text, kwargs = demo_config(
                {**sim.world_info(), "api_version": VERSION}, Path(lake), {"harvest": table}
            )
            report = await run_harvest(parse_config(toml_text, **kwargs))
            rows = ds.dataset(
                Path(lake) / "media_insights", format="parquet", partitioning="hive"
            ).to_table(columns=["media_id", "metric"])
        stats = sim.stats()
    got = {
        m
        for m, x in zip(rows["media_id"].to_pylist(), rows["metric"].to_pylist(), strict=True)
        if x in SHARED_TO_FACEBOOK_ONLY
    }
    n = len(harvested)
    return {
        "media": n,
        "shared": len(shared),
        "calls": stats["calls_total"],
        "http_requests": stats["requests_total"],
        "calls_per_media": round(stats["calls_total"] / n, 3),
        "requests_per_media": round(stats["requests_total"] / n, 3),
        "refused": report.conditional_refused,
        "accounts_stopped": report.conditional_accounts_stopped,
        "shared_media_with_metrics": len(got & shared),
        "error_rows": report.error_rows,
    }


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for batch_size in (0, 50):
        for label, harvest, shared in CASES:
            fig = await one(args.accounts, args.media, batch_size, harvest, shared)
            out.append({"case": label, "batch_size": batch_size, **fig})
            print(json.dumps(out[-1]), file=sys.stderr)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--media", type=int, default=200)
    args = parser.parse_args()
    rows = anyio.run(main, args)
    RESULTS.write_text(json.dumps({"command": sys.argv, "rows": rows}, indent=2) + "\n")
    print(
        "| case | path | calls/media | HTTP requests/media | refused | accounts stopped |"
        " shared media with the metrics |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        path = "single" if r["batch_size"] == 0 else "batch 50"
        print(
            f"| {r['case']} | {path} | {r['calls_per_media']} | {r['requests_per_media']} |"
            f" {r['refused']} | {r['accounts_stopped']} |"
            f" {r['shared_media_with_metrics']} / {r['shared']} |"
        )
