"""What Graph batching can give at most: insights through batch POSTs with `harvester.graph.batch`.

No pipeline, no listing, no rows, no sink: for every media of a trouble-free world, the insights
ops the harvester makes (all metrics its routing gives the kind, plus one op per breakdown) are
sent as batch POSTs of `--batch-size` ops per account with the account's token in the
Authorization header, and every op goes through `decode_batch` -> `decode_reply` ->
`parse_insights`. Its client CPU per media is a floor for the batching harvester; `run.py` runs it
as the `codec` variant, in a process of its own, against its simulator:

    python benchmarks/batch_ceiling.py --world WORLD.json --accounts 50 --media 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

from harvester.graph.batch import (
    FORM_CONTENT_TYPE,
    BatchOp,
    decode_batch,
    encode_batch_body,
    insights_op,
)
from harvester.graph.errors import decode_reply
from harvester.graph.replies import parse_insights
from harvester.harvest.routing import route
from harvester.simulator import World

T = TypeVar("T")


def plan(
    world: World, accounts: int, batch_size: int, api_version: str
) -> list[tuple[str, list[BatchOp]]]:
    """(token, ops) per batch: each account's media ops cut into batches of batch_size. A media's
    ops are the ones the harvester's routing gives its kind at `api_version` (`routing.route`:
    its metrics in one op, one op per breakdown), so the floor follows the catalogue."""
    out = []
    for account in world.accounts[:accounts]:
        ops: list[BatchOp] = []
        for media in world.iter_media(account.id):
            planned = route(media.media_type, media.media_product_type, api_version)
            ops.append(insights_op(media.id, planned.metrics))
            ops += [insights_op(media.id, [m], breakdown=k) for m, k in planned.breakdowns]
        out += [(account.token, ops[i : i + batch_size]) for i in range(0, len(ops), batch_size)]
    return out


async def pooled(
    items: Iterable[T],
    concurrency: int,
    handle: Callable[[aiohttp.ClientSession, T], Awaitable[int]],
) -> int:
    """`handle` every item on one session, `concurrency` at a time (the workers share one
    iterator); the sum of what it returns. The floors' whole client: no pacing, no retries."""
    total = 0
    queue = iter(items)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal total
            for item in queue:
                total += await handle(session, item)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total


async def harvest(
    base_url: str, api_version: str, batches: list[tuple[str, list[BatchOp]]], concurrency: int
) -> int:
    url = f"{base_url}/{api_version}/"

    async def one(session: aiohttp.ClientSession, batch: tuple[str, list[BatchOp]]) -> int:
        token, ops = batch
        form = encode_batch_body(ops, include_headers=True)
        headers = {"Authorization": "Bearer " + token, "Content-Type": FORM_CONTENT_TYPE}
        async with session.post(url, data=form, headers=headers) as r:
            reply = orjson.loads(await r.read())
        values = 0
        for op, result in zip(ops, decode_batch(reply, len(ops)), strict=True):
            assert result is not None
            metrics = op.params[0][1].split(",")
            data = decode_reply(result.status, result.headers, result.body)
            values += len(parse_insights(data, metrics))
        return values

    return await pooled(batches, concurrency, one)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--media", type=int, required=True, help="media per account")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    info = json.loads(args.world.read_text())
    # The simulator's world is a pure function of (seed, accounts, media): rebuilt here, it names
    # the media without listing them, and its first `--accounts` accounts are the simulator's.
    world = World(args.seed, len(info["accounts"]), args.media, troubles=False)
    batches = plan(world, args.accounts, args.batch_size, info["api_version"])
    t0, c0 = time.perf_counter(), time.process_time()
    values = asyncio.run(harvest(info["base_url"], info["api_version"], batches, args.concurrency))
    result: dict[str, Any] = {
        "media": args.accounts * args.media,
        "rows": values,
        "client_requests": len(batches),
        "wall_seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
