"""Side-by-side throughput: the harvester with and without Graph batching, and the official SDK.

    python benchmarks/run.py --latency-ms 0,50 --accounts 1,10,50 --media 200 [--quick]

For each latency one simulator process serves a trouble-free world of max(accounts) accounts;
each (accounts, variant) pair then runs in a child process of its own (see measure.py), so CPU
and peak RSS are the client's alone. Results: benchmarks/results/<stamp>.json, latest.json,
latest.md (table) and latest.png (media/s against accounts); a run of only some variants writes
<stamp>.* or --name's files instead of latest.*. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harvest_variant import batching_wired
from measure import figures, run_child, whole_job_figures
from report import write_chart, write_table
from simproc import SimulatorProcess

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("batch", "nobatch", "sdk", "codec", "job", "job_noacct", "sdk_job")
# Variants that do the whole default job: their table rows carry calls per account.
WHOLE_JOB = ("job", "job_noacct", "sdk_job")
# Variants run once whatever --repeat says: the SDK's loops are latency-bound (steady from run to
# run) and take most of a run's time.
ONCE = ("sdk", "sdk_job")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def variant_cmd(variant: str, accounts: int, args: argparse.Namespace) -> list[str]:
    if variant == "sdk":
        return [
            "benchmarks/sdk_baseline.py", "--accounts", str(accounts),
            "--max-media", str(args.sdk_max_media), "--max-seconds", str(args.sdk_max_seconds),
        ]  # fmt: skip
    if variant == "sdk_job":
        return [
            "benchmarks/sdk_job.py", "--accounts", str(accounts),
            "--media-per-account", str(args.media),
            "--max-media", str(args.sdk_max_media), "--max-seconds", str(args.sdk_max_seconds),
        ]  # fmt: skip
    if variant == "codec":
        return [
            "benchmarks/batch_ceiling.py", "--accounts", str(accounts), "--media", str(args.media),
            "--batch-size", str(args.batch_size),
        ]  # fmt: skip
    size = args.batch_size if variant in ("batch", "job", "job_noacct") else 0
    cmd = ["benchmarks/harvest_variant.py", "--accounts", str(accounts), "--batch-size", str(size)]
    if variant == "job_noacct":
        return [*cmd, "--whole-job", "--without-account-insights"]
    return [*cmd, "--whole-job"] if variant == "job" else cmd


def note_for(variant: str, accounts: int, media: int, fig: dict[str, Any]) -> str:
    if variant == "codec":
        return "floor: batch POSTs + codec + parse only (no listing, rows, sink)"
    if variant == "job":
        return "whole default job: media, stories, account insights (30 days)"
    if variant == "job_noacct":
        return "the whole job with account_insights = false"
    if variant == "sdk_job":
        job = fig["whole_job"]
        return (
            f"whole job the documented way; capped: {job['media_harvested']} media, "
            f"{job['stories_harvested']} stories, {job['account_requests_per_account']} account "
            f"insights requests per account, {job['accounts_done']} account(s); media/s per "
            "account with the media time extrapolated to all its media"
        )
    if variant == "batch" and not batching_wired():
        return "batching: not yet wired (ran without batching)"
    if variant == "sdk" and fig["media"] < accounts * media:
        return (
            f"capped: {fig['media']} of {accounts * media} media; rates measured on the capped "
            "run (a sequential loop's rate does not depend on the total)"
        )
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=_floats, default=[0.0, 50.0])
    parser.add_argument("--accounts", type=_ints, default=[1, 10, 50])
    parser.add_argument("--media", type=int, default=200, help="media per account")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch-size", type=int, default=50, help="ops per batch in 'batch'")
    parser.add_argument("--sdk-max-media", type=int, default=400)
    parser.add_argument("--sdk-max-seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="SDK capped at 150 media / 8 s")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the harvester's variants, in turn on one simulator (the SDK's run once): "
        "the summaries' ratios are each round's, paired, and their median",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--name",
        help="results/<name>.{json,md,png}; default latest for the full set of variants, else "
        "the UTC stamp (a partial run never replaces latest.*)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sdk_max_media, args.sdk_max_seconds = 150, 8.0
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")

    started = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    for latency in args.latency_ms:
        with SimulatorProcess(
            accounts=max(args.accounts), media=args.media, latency_ms=latency
        ) as sim:
            for accounts, round_, variant in (
                (accounts, round_, variant)
                for accounts in args.accounts
                for round_ in range(max(1, args.repeat))
                for variant in variants
                if round_ == 0 or variant not in ONCE
            ):
                raw = run_child(variant_cmd(variant, accounts, args), sim)
                fig = figures(raw)
                if variant in WHOLE_JOB:
                    fig = whole_job_figures(raw, fig, accounts)
                entry = {
                    "latency_ms": latency,
                    "accounts": accounts,
                    "media_per_account": args.media,
                    "variant": variant,
                    "round": round_,
                    **fig,
                    "note": note_for(variant, accounts, args.media, fig),
                }
                results.append(entry)
                print(
                    f"latency={latency:g}ms accounts={accounts} {variant:8s} "
                    f"{fig['media_per_s']:>9.1f} media/s {fig['http_requests_per_s']:>8.1f} "
                    f"req/s {fig['client_cpu_us_per_media']:>8.1f} us/media "
                    f"rss={fig['peak_rss_mb']} MB {entry['note']}",
                    file=sys.stderr,
                    flush=True,
                )
    doc = {
        "command": "python " + shlex.join(["benchmarks/run.py", *(argv or sys.argv[1:])]),
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "system": _system()},
        "batching_wired": batching_wired(),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"{stamp}.json").write_text(text)
    name = args.name or ("latest" if set(variants) == set(VARIANTS) else stamp)
    (args.out / f"{name}.json").write_text(text)
    write_table(doc, args.out / f"{name}.md")
    written = [f"{name}.json", f"{name}.md"]
    if write_chart(doc, args.out / f"{name}.png"):
        written.append(f"{name}.png")
    else:
        print("no chart: matplotlib is not installed (pip install '.[bench]')", file=sys.stderr)
    print(f"wrote {args.out}/{', '.join(written)}", file=sys.stderr)
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _system() -> str:
    return f"{platform.system()} {platform.machine()} {time.tzname[0]}"


if __name__ == "__main__":
    raise SystemExit(main())
