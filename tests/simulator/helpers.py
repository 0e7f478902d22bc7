"""Simulator test helpers: a started simulator plus a tiny JSON client over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from harvester.simulator import RunningSimulator, SimulatorSettings, run_simulator

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
BASE = SimulatorSettings(seed=7, accounts=3, media_per_account=60, now=NOW)


class Client:
    """GET/POST returning (status, headers, parsed JSON body)."""

    def __init__(self, session: aiohttp.ClientSession, sim: RunningSimulator) -> None:
        self.session = session
        self.sim = sim

    async def get(
        self, path: str, headers: dict[str, str] | None = None, **params: str
    ) -> tuple[int, dict[str, str], Any]:
        url = path if path.startswith("http") else f"{self.sim.base_url}{path}"
        async with self.session.get(url, params=params or None, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, dict(resp.headers), orjson.loads(raw) if raw else None

    async def account_insights(
        self, account: int = 0, version: str = "v25.0", **params: str
    ) -> tuple[int, Any]:
        """(status, body) of `/{ig-user-id}/insights` for one of the world's accounts."""
        acc = self.sim.world.accounts[account]
        status, _, body = await self.get(
            f"/{version}/{acc.id}/insights", access_token=acc.token, **params
        )
        return status, body

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        async with self.session.post(f"{self.sim.base_url}{path}", data=data) as resp:
            raw = await resp.read()
            return resp.status, dict(resp.headers), orjson.loads(raw)


@asynccontextmanager
async def serve(settings: SimulatorSettings = BASE, **changes: Any) -> AsyncIterator[Client]:
    async with run_simulator(replace(settings, **changes)) as sim, aiohttp.ClientSession() as s:
        yield Client(s, sim)
