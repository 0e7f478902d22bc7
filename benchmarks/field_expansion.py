"""Field expansion (`insights.metric(...)` on `/media`) against today's batch ops, measured.

(A) today: list `/media` pages, then batch POSTs (<= 50 ops) of each media's full routed metric set
and breakdown ops. (B) expansion: list with `insights.metric(<common set>)` inline (the metrics
routed for every kind `/media` lists), then batch POSTs of the remaining per-kind metrics and
breakdown ops. Every pair must give the same (media, metric, breakdown, value) set. Also: the
bound (only the common set asked, so expansion needs no ops), whether the common set ever fails a
page (simulator tables; runs `--as-of` a date on which impressions, plays... are retired; a world
with troubles), and a failed page's fallback cost, forced by expanding retired `impressions`.

    python benchmarks/field_expansion.py --latency-ms 0,50 --accounts 10 --media 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from statistics import median
from typing import Any, Self

import aiohttp
import anyio
from measure import process_cpu_seconds
from simproc import ROOT, SimulatorProcess, stats_delta

from harvester.graph import batch as batching
from harvester.graph.errors import GraphError, decode_reply
from harvester.graph.replies import parse_insights, parse_media
from harvester.harvest.listing import MEDIA_FIELDS
from harvester.harvest.routing import route
from harvester.simulator import validity

PAGE_SIZE = 100  # HarvestSettings.media_page_size: the `limit` listing.list_media sends
LISTED = (("IMAGE", "FEED"), ("VIDEO", "FEED"), ("CAROUSEL_ALBUM", "FEED"), ("VIDEO", "REELS"))
AS_OF = "2026-11-29"
OUT = ROOT / "benchmarks" / "results" / "field_expansion.json"
Job = tuple[batching.BatchOp, str, list[str], bool]  # op, media id, its metrics, breakdown op?


def common_set(version: str, dropped: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Metrics routed for every kind `/media` can list: the only set that is safe to expand."""
    routes = [route(t, p, version, dropped=dropped) for t, p in LISTED]
    return tuple(m for m in routes[0].metrics if all(m in r.metrics for r in routes[1:]))


def retired(version: str, as_of: str | None) -> frozenset[str]:
    """Routed metrics the simulator's tables reject for some listed kind, old or new media, at
    `as_of`: what a run learns from its first rejected ops (and then drops)."""
    day = None if as_of is None else date.fromisoformat(as_of)
    created = (datetime(2023, 12, 31, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    return frozenset(
        metric
        for (kind, product), when in [(k, c) for k in LISTED for c in created]
        for metric in route(kind, product, version).metrics
        if metric
        not in validity.valid_media_metrics(version, kind, product, as_of=day, created=when)
    )


class Simulator(SimulatorProcess):
    """SimulatorProcess with other flags (simproc has none for `--as-of` or troubles)."""

    def __init__(self, *, flags: tuple[str, ...] = ("--no-troubles",), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flags = flags

    def __enter__(self) -> Self:
        cmd = [
            sys.executable, "-m", "harvester.simulator", "--port", "0", "--seed", str(self.seed),
            "--accounts", str(self.accounts), "--media", str(self.media),
            "--latency-ms", str(self.latency_ms), *self.flags, "--world-out", str(self.world_file),
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.world_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("simulator did not start")
            time.sleep(0.05)
        self.world = json.loads(self.world_file.read_text())
        return self


@dataclass
class Run:
    version: str
    expand: tuple[str, ...]  # empty: strategy A
    dropped: frozenset[str] = frozenset()
    learn: bool = True  # after a failed expanded page, stop expanding for the rest of the run
    only: tuple[str, ...] | None = None  # ask only these metrics, no breakdowns (the bound)
    probe: bool = False  # list only, send no ops (the world with troubles)
    results: set[tuple[str, str, str | None, int | None]] = field(default_factory=set)
    media = requests = received = failed_pages = empty_insights = 0

    def add(self, media_id: str, values: list[Any]) -> None:
        self.results.update((media_id, metric, split, v) for metric, _, split, v in values)


async def fetch(session: aiohttp.ClientSession, run: Run, url: str, token: str, **kw: Any) -> Any:
    headers = {"Authorization": "Bearer " + token}
    if "data" in kw:
        headers["Content-Type"] = batching.FORM_CONTENT_TYPE
    async with session.request("POST" if "data" in kw else "GET", url, headers=headers, **kw) as r:
        raw = await r.read()
    run.requests += 1
    run.received += len(raw)
    return decode_reply(r.status, r.headers, raw)


async def list_page(session: Any, run: Run, url: str, token: str, params: dict[str, str]) -> Any:
    """One `/media` page, expanded if the run still expands; on code 100 the plain page again."""
    if run.expand:
        fields = f"{MEDIA_FIELDS},insights.metric({','.join(run.expand)})"
        expand = run.expand
        try:
            return expand, await fetch(session, run, url, token, params=params | {"fields": fields})
        except GraphError as error:  # one media rejected a metric: the whole page failed
            if error.code != 100:
                raise
            run.failed_pages += 1
            run.expand = () if run.learn else run.expand
    return (), await fetch(session, run, url, token, params=params)


def plan(run: Run, account_id: str, items: list[Any], expand: tuple[str, ...]) -> list[Job]:
    """Keep a page's expanded values; the ops its media still need."""
    jobs: list[Job] = []
    for item in items:
        media = next(parse_media(item, account_id))  # children are listed, never asked
        run.media += 1
        planned = route(
            media.media_type, media.media_product_type, run.version, dropped=run.dropped
        )
        wanted = planned.metrics if run.only is None else run.only
        if expand:
            run.empty_insights += not item.get("insights", {}).get("data")
            run.add(media.id, parse_insights(item.get("insights", {"data": []}), expand))
        if rest := [m for m in wanted if m not in expand]:
            jobs.append((batching.insights_op(media.id, rest), media.id, rest, False))
        for metric, key in planned.breakdowns if run.only is None else ():
            op = batching.insights_op(media.id, [metric], breakdown=key)
            jobs.append((op, media.id, [metric], True))
    return jobs


async def harvest_account(session: Any, base: str, acc: dict[str, str], run: Run) -> None:
    url, token = f"{base}/{run.version}/{acc['id']}/media", acc["token"]
    params = {"fields": MEDIA_FIELDS, "limit": str(PAGE_SIZE)}
    while True:
        expand, page = await list_page(session, run, url, token, params)
        jobs = plan(run, acc["id"], page["data"], expand)
        async with anyio.create_task_group() as tg:
            for i in range(0, 0 if run.probe else len(jobs), batching.MAX_OPS):
                tg.start_soon(send_batch, session, base, token, run, jobs[i : i + batching.MAX_OPS])
        if "next" not in page.get("paging", {}):
            return
        params["after"] = page["paging"]["cursors"]["after"]


async def send_batch(session: Any, base: str, token: str, run: Run, jobs: list[Job]) -> None:
    body = batching.encode_batch_body([job[0] for job in jobs], include_headers=True)
    reply = await fetch(session, run, f"{base}/{run.version}/", token, data=body)
    for job, got in zip(jobs, batching.decode_batch(reply, len(jobs)), strict=True):
        assert got is not None
        data = decode_reply(got.status, got.headers, got.body, requested_metrics=job[2])
        run.add(job[1], parse_insights(data, job[2], with_totals=not job[3]))


async def measure(sim: Simulator, accounts: int, run: Run) -> dict[str, Any]:
    before, server_cpu = sim.stats(), process_cpu_seconds(sim.pid)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        t0, c0 = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as tg:
            for acc in sim.world["accounts"][:accounts]:
                tg.start_soon(harvest_account, session, sim.base_url, acc, run)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    server_cpu = process_cpu_seconds(sim.pid) - server_cpu
    server = stats_delta(before, sim.stats())
    return {
        "media_per_s": run.media / wall,
        "http_requests": run.requests,
        "sim_requests": server["http_requests"],
        "sim_calls": server["calls"],
        "failed_pages": run.failed_pages,
        "client_cpu_us_per_media": 1e6 * cpu / run.media,
        "server_cpu_us_per_media": 1e6 * server_cpu / run.media,
        "bytes_received_per_media": run.received / run.media,
        "media": run.media,
        "values": len(run.results),
        "media_with_empty_expanded_insights": run.empty_insights,
    }


def repeated(sim: Simulator, accounts: int, repeats: int, **runs: Any) -> dict[str, Any]:
    """Each run `repeats` times (order rotated), medians; every run must give the same results."""
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    reference = None
    for rep in range(repeats):
        for name in list(runs)[rep % len(runs) :] + list(runs)[: rep % len(runs)]:
            run = runs[name]()
            samples[name].append(anyio.run(measure, sim, accounts, run))
            reference = reference or run.results
            assert run.results == reference, f"{name} gave other results"
    return {
        name: {k: median(s[k] for s in got) for k in got[0]}
        | {"media_per_s_samples": sorted(round(s["media_per_s"]) for s in got)}
        for name, got in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--media", type=int, default=1000, help="media per account")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, reps, v21, v22, v25 = args.accounts, args.repeats, "v21.0", "v22.0", "v25.0"
    gone = retired(v21, AS_OF)  # impressions, plays...: both strategies have dropped them
    c21, c22, c25 = common_set(v21, gone), common_set(v22), common_set(v25)
    bad = (*c21, "impressions")  # forced failure: a retired metric in the expanded set
    out: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "load_avg_1m": os.getloadavg()[0]},
        "world": {"accounts": n, "media_per_account": args.media, "page_size": PAGE_SIZE},
        "common_set": {v21: c21, v22: c22, v25: c25},
        "common_set_rejected_by_sim_tables": {
            f"{v}@{d}": sorted(set(common_set(v)) & retired(v, d))
            for v in [f"v{major}.0" for major in range(18, 26)]
            for d in (None, AS_OF)
        },
        "by_latency_ms": {},
    }
    for latency in [float(x) for x in args.latency_ms.split(",")]:
        size = {"accounts": n, "media": args.media, "latency_ms": latency}
        with Simulator(**size) as sim:
            got = {"v25": repeated(sim, n, reps, A=lambda: Run(v25, ()), B=lambda: Run(v25, c25))}
            got["v25_bound_common_set_only"] = repeated(
                sim, n, reps, A=lambda: Run(v25, (), only=c25), B=lambda: Run(v25, c25, only=())
            )
        with Simulator(flags=("--no-troubles", "--as-of", AS_OF), **size) as sim:
            got[f"v21_as_of_{AS_OF}"] = repeated(
                sim, n, reps, A=lambda: Run(v21, (), gone), B=lambda: Run(v21, c21, gone),
                B_forced_fail_fallback_every_page=lambda: Run(v21, bad, gone, learn=False),
                B_forced_fail_fallback_then_learn=lambda: Run(v21, bad, gone, learn=True),
            )  # fmt: skip
            runs = {"A": lambda: Run(v22, ()), "B": lambda: Run(v22, c22)}
            got[f"v22_as_of_{AS_OF}"] = repeated(sim, n, reps, **runs)
        out["by_latency_ms"][f"{latency:g}"] = got
        print(json.dumps({f"{latency:g} ms": got}, indent=1), flush=True)
    # Troubles on (deleted, pre-conversion, no data...; the last account's token is dead): listing
    # only, the ops of troubled media would fail. Does a trouble ever fail an expanded page?
    with Simulator(flags=(), accounts=n, media=args.media, latency_ms=0) as sim:
        probe = anyio.run(measure, sim, n - 1, Run(v25, c25, probe=True))
        out["troubles_v25_expanded_listing_only"] = probe
    print(json.dumps({"troubles": probe}), flush=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
