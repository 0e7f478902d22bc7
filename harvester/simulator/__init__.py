"""A simulated Instagram Graph API (aiohttp.web on loopback) with Meta's shapes, errors and limits.

Tests, benchmarks and `harvester demo` run against it; see `run_simulator` and `World`.
"""

from harvester.simulator.entities import SimAccount, SimMedia
from harvester.simulator.server import RunningSimulator, run_simulator, world_info
from harvester.simulator.settings import FaultSettings, LimitSettings, SimulatorSettings
from harvester.simulator.validity import valid_media_metrics
from harvester.simulator.world import World

__all__ = [
    "FaultSettings",
    "LimitSettings",
    "RunningSimulator",
    "SimAccount",
    "SimMedia",
    "SimulatorSettings",
    "World",
    "run_simulator",
    "valid_media_metrics",
    "world_info",
]
