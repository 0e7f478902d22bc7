"""What Graph batching can give at most: insights through batch POSTs with `harvester.batching`.

No pipeline, no sink: for every media of a trouble-free world, the same insights ops the
harvester makes (all metrics of its kind, plus the `profile_activity` breakdown on FEED) are sent
as batch POSTs of `--batch-size` ops per account, with the account's token in the Authorization
header, and every op goes through `decode_batch` -> `decode_reply` -> `parse_insights`. Reports
media/s, calls/s and the client CPU per media that this floor costs:

    python benchmarks/batch_ceiling.py --latency-ms 50 --accounts 50 --media 200 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
import orjson
from measure import process_cpu_seconds
from simproc import SimulatorProcess

from harvester.batching import BatchOp, decode_batch, encode_batch, insights_op
from harvester.errors import decode_reply
from harvester.parsing import parse_insights
from harvester.simulator import World

FEED = [
    "reach",
    "saved",
    "total_interactions",
    "shares",
    "likes",
    "comments",
    "follows",
    "profile_visits",
    "profile_activity",
    "views",
    "reposts",
]
REELS = [
    "reach",
    "saved",
    "comments",
    "likes",
    "shares",
    "total_interactions",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "views",
    "reposts",
]


def plan(world: World, accounts: int, batch_size: int) -> list[tuple[str, list[BatchOp]]]:
    """(token, ops) per batch: each account's media ops cut into batches of batch_size."""
    out = []
    for account in world.accounts[:accounts]:
        ops: list[BatchOp] = []
        for media in world.iter_media(account.id):
            if media.media_product_type == "REELS":
                ops.append(insights_op(media.id, REELS))
            else:
                ops.append(insights_op(media.id, FEED))
                ops.append(insights_op(media.id, ["profile_activity"], breakdown="action_type"))
        out += [(account.token, ops[i : i + batch_size]) for i in range(0, len(ops), batch_size)]
    return out


async def harvest(base_url: str, batches: list[tuple[str, list[BatchOp]]], concurrency: int) -> int:
    values = 0
    queue = iter(batches)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal values
            for token, ops in queue:
                form = encode_batch(ops, include_headers=True)
                headers = {"Authorization": "Bearer " + token}
                async with session.post(f"{base_url}/v25.0/", data=form, headers=headers) as r:
                    reply = orjson.loads(await r.read())
                for op, result in zip(ops, decode_batch(reply, len(ops)), strict=True):
                    assert result is not None
                    metrics = op.params[0][1].split(",")
                    data = decode_reply(result.status, result.headers, result.body)
                    values += len(parse_insights(data, metrics))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--media", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    world = World(7, args.accounts, args.media, troubles=False)
    batches = plan(world, args.accounts, args.batch_size)
    media = args.accounts * args.media
    with SimulatorProcess(
        accounts=args.accounts, media=args.media, latency_ms=args.latency_ms
    ) as sim:
        server0 = process_cpu_seconds(sim.pid)
        t0, c0 = time.perf_counter(), time.process_time()
        values = asyncio.run(harvest(sim.base_url, batches, args.concurrency))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        server = process_cpu_seconds(sim.pid) - server0
        stats = sim.stats()
    result: dict[str, Any] = {
        **vars(args),
        "media_per_s": round(media / wall, 1),
        "calls_per_s": round(stats["calls_total"] / wall, 1),
        "http_requests": stats["requests_total"],
        "values": values,
        "client_cpu_us_per_media": round(cpu * 1e6 / media, 1),
        "server_cpu_pct": round(100 * server / wall, 1),
        "wall_seconds": round(wall, 2),
    }
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
