"""A run with competitors killed with SIGKILL mid-way and resumed ends with the lake of an
uninterrupted run: no competitor's rows lost or doubled, no committed competitor asked again."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from harvester.harvest.competitors import unit_id
from harvester.simulator import SimulatorSettings, run_simulator
from tests.harvest import test_resume as resume
from tests.harvest.test_resume import Harvester, kill, lake_content, manifests, wait_until

pytestmark = pytest.mark.anyio

# Replies a little late, so the run is still paging competitors when it is killed.
WORLD = SimulatorSettings(
    seed=21, accounts=2, media_per_account=6, competitors=40, latency_ms=15.0, request_log=True
)
NAMES = [f"competitor_{c}" for c in range(40)] + ["no_such_shop"]


def write_config(
    tmp: Path, info: dict[str, Any], lake: Path, checkpoint: float
) -> tuple[Path, dict[str, str]]:
    """test_resume's config, competitors only: no insights, 20 media each in pages of 5."""
    path, env = resume.write_config(tmp, info, lake, checkpoint)
    harvest = [
        "media_insights = false",
        "account_insights = false",
        "stories = false",
        "competitor_media = 20",
        "media_page_size = 5",
    ]
    text = path.read_text().replace("[harvest]\n", "[harvest]\n" + "\n".join(harvest) + "\n", 1)
    competitors = [f"[[competitors]]\nusername = '{name}'\n" for name in NAMES]
    path.write_text(text + "".join(competitors))
    return path, env


def committed(lake: Path) -> set[str]:
    return {u for m in manifests(lake) for u in m["other"] if u.startswith("competitor/")}


async def test_a_killed_run_with_competitors_resumes_to_the_uninterrupted_lake(
    tmp_path: Path,
) -> None:
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        until = sim.world.now.date()
        window = ((until - timedelta(days=2)).isoformat(), until.isoformat())
        config, env = write_config(tmp_path, info, tmp_path / "reference", checkpoint=300)
        code, stderr = await Harvester(config, env, *window).complete()
        assert code == 3, stderr  # the unknown name and the world's dead token: error rows
        sim.request_log.clear()

        lake = tmp_path / "crashed"
        config, env = write_config(tmp_path, info, lake, checkpoint=0.05)
        harvester = Harvester(config, env, *window)
        process = await harvester.start(tmp_path / "run.log")
        await wait_until(process, lambda: len(committed(lake)) >= 5)
        assert await kill(process) == -signal.SIGKILL
        killed_at = sim.request_log[-1]["t"]
        done = committed(lake)
        assert 5 <= len(done) < len(NAMES)
        code, stderr = await harvester.complete()
        assert code == 3, stderr
        log = list(sim.request_log)

    assert lake_content(lake) == lake_content(tmp_path / "reference")
    # Every competitor done once; the unknown one done too, as incomplete (its error row).
    found = {unit_id(name) for name in NAMES[:-1]} | {unit_id("no_such_shop") + "#incomplete"}
    assert committed(lake) == found
    asked_again = {
        e["params"]["fields"].split("username(", 1)[1].split(")", 1)[0]
        for e in log
        if e["edge"] == "business_discovery" and e["t"] > killed_at
    }
    assert not {unit_id(name) for name in asked_again} & done
