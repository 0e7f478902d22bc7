"""`run_simulator`: the simulated Graph API as an async context manager on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from harvester.simulator.app import SimState, build_app
from harvester.simulator.settings import SimulatorSettings
from harvester.simulator.world import World


class RunningSimulator:
    """A started simulator: where it listens, its world, and what clients have done to it."""

    def __init__(self, state: SimState, base_url: str, instagram_base_url: str = "") -> None:
        self._state = state
        self.base_url = base_url
        # The Instagram host (graph.instagram.com's stand-in), on a port of its own.
        self.instagram_base_url = instagram_base_url
        self.settings = state.settings

    @property
    def world(self) -> World:
        return self._state.world

    @property
    def state(self) -> SimState:
        return self._state

    @property
    def request_log(self) -> list[dict[str, Any]]:
        return self._state.stats.request_log

    def stats(self) -> dict[str, Any]:
        """The same dict `GET /__sim/stats` returns."""
        return self._state.snapshot()

    def world_info(self) -> dict[str, Any]:
        return world_info(self._state, self.base_url, self.instagram_base_url)


def world_info(state: SimState, base_url: str, instagram_base_url: str = "") -> dict[str, Any]:
    """What `--world-out` writes: enough for any client to call the simulator."""
    world = state.world
    return {
        "base_url": base_url,
        "instagram_base_url": instagram_base_url,
        "api_version": state.settings.api_version,
        "app_secret": state.settings.app_secret,
        "accounts": [
            {"id": a.id, "token": a.token, "page_id": a.page_id, "login": a.login}
            for a in world.accounts
        ],
        "user_token": world.user_token,
        "login": state.settings.login,
        "extra_metrics": {k: list(v) for k, v in state.settings.extra_metrics.items()},
        # Which media are shared to Facebook (and so have crossposted_views, facebook_views) is
        # the rule `World.shared_to_facebook(media)`; this share of media, deterministic per seed.
        "shared_to_facebook_percent": world.shared_to_facebook_percent,
        # Usernames business discovery knows (`World.competitors` derives their profiles, media).
        "competitors": world.competitors.usernames,
    }


@asynccontextmanager
async def run_simulator(
    settings: SimulatorSettings | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulated Graph API on `settings.host:settings.port` (port 0: any free port),
    and its Instagram host on `settings.instagram_port`."""
    settings = settings or SimulatorSettings()
    state = SimState(settings)
    runners = [
        web.AppRunner(
            build_app(state, host), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        for host in ("facebook", "instagram")
    ]
    try:
        urls = []
        for runner, port in zip(runners, (settings.port, settings.instagram_port), strict=True):
            await runner.setup()
            await web.TCPSite(runner, settings.host, port).start()
            urls.append(f"http://{settings.host}:{runner.addresses[0][1]}")
        yield RunningSimulator(state, urls[0], urls[1])
    finally:
        for runner in runners:
            await runner.cleanup()
        state.stats.close()
