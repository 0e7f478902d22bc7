"""Peak RSS of the harvester as the harvest grows: is memory bounded by buffers, not by media?

    python benchmarks/rss_scaling.py --sizes 10000,100000,1000000 [--media-per-account 1000]

Each size is a fresh simulator process (latency 0, no troubles) with size / media-per-account
accounts, harvested by `harvest_variant.py` in a child process of its own (batching at the config
default). Reports peak RSS per size and the RSS samples' quartiles and tenths, so a flat curve
is visible.
1,000,000 media takes many minutes on two cores: start with the smaller sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from measure import figures, run_child
from simproc import SimulatorProcess

RESULTS = Path(__file__).resolve().parent / "results"


def at_fractions(samples: list[tuple[float, int]], fractions: list[float]) -> list[float]:
    """RSS (MB) at the given fractions of the run's duration."""
    if not samples:
        return []
    picks = [samples[min(len(samples) - 1, round(q * (len(samples) - 1)))] for q in fractions]
    return [round(kb / 1024, 1) for _, kb in picks]


def quartiles(samples: list[tuple[float, int]]) -> list[float]:
    """RSS (MB) at 25, 50, 75 and 100 % of the run's duration."""
    return at_fractions(samples, [0.25, 0.5, 0.75, 1])


def tenths(samples: list[tuple[float, int]]) -> list[float]:
    """RSS (MB) at 10, 20, ... 100 % of the run: a quartile can miss a sawtooth's tooth, and
    growth with the media count shows as a rising floor, not as one high sample."""
    return at_fractions(samples, [i / 10 for i in range(1, 11)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--media-per-account", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    for size in sizes:
        accounts = max(1, size // args.media_per_account)
        with SimulatorProcess(accounts=accounts, media=args.media_per_account, latency_ms=0) as sim:
            raw = run_child(
                ["benchmarks/harvest_variant.py", "--accounts", str(accounts), "--rss-samples"], sim
            )
        fig = figures(raw)
        entry = {
            "target_media": size,
            "accounts": accounts,
            "media": fig["media"],
            "peak_rss_mb": fig["peak_rss_mb"],
            "rss_mb_at_25_50_75_100_pct": quartiles(raw.get("rss_samples_kb", [])),
            "rss_mb_at_each_10_pct": tenths(raw.get("rss_samples_kb", [])),
            "arrow_mb_at_25_50_75_100_pct": quartiles(
                [(0.0, kb) for kb in raw.get("arrow_samples_kb", [])]
            ),
            "media_per_s": fig["media_per_s"],
            "client_cpu_us_per_media": fig["client_cpu_us_per_media"],
            "wall_seconds": fig["wall_seconds"],
            "batching_wired": raw["batching_wired"],
        }
        rows.append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    doc = {
        "command": "python benchmarks/rss_scaling.py " + " ".join(sys.argv[1:]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "rss_scaling_" + "_".join(str(size) for size in sizes) + ".json"
    (args.out / name).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
