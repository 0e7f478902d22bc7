"""How many insights replies per second one simulator process serves at zero latency.

Starts `python -m harvester.simulator` in its own process (one core for the server), then hammers
`/{media-id}/insights` from this process with keep-alive aiohttp connections and prints JSON:

    python benchmarks/simulator_throughput.py --seconds 10 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from harvester.simulator import World


async def _hammer(
    base_url: str, version: str, targets: list[tuple[str, str]], seconds: float, concurrency: int
) -> dict[str, Any]:
    ok = 0
    errors = 0
    cycle = itertools.cycle(targets)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(deadline: float) -> None:
            nonlocal ok, errors
            while time.perf_counter() < deadline:
                media_id, token = next(cycle)
                url = f"{base_url}/{version}/{media_id}/insights"
                params = {"metric": "reach,saved,likes,comments,shares", "access_token": token}
                async with session.get(url, params=params) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        errors += 1

        warmup = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warmup) for _ in range(concurrency)))
        ok = errors = 0
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "replies_per_second": round(ok / elapsed, 1),
        "ok": ok,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "concurrency": concurrency,
    }


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            loaded: dict[str, Any] = json.loads(path.read_text())
            return loaded
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}")
        time.sleep(0.05)
    raise TimeoutError("simulator did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--media", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world_out = Path(tmp) / "world.json"
        cmd = [
            sys.executable, "-m", "harvester.simulator", "--seed", str(args.seed),
            "--accounts", str(args.accounts), "--media", str(args.media), "--no-troubles",
            "--world-out", str(world_out),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd)
        try:
            info = _wait_for(world_out, proc, 30.0)
            world = World(args.seed, args.accounts, args.media, troubles=False)
            tokens = {a.id: a.token for a in world.accounts}
            targets = [
                (m.id, tokens[a.id])
                for a in world.accounts
                for m in world.iter_media(a.id)
                if m.media_product_type == "REELS"
            ]
            result = asyncio.run(
                _hammer(info["base_url"], "v25.0", targets, args.seconds, args.concurrency)
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
