"""`harvester plan` prices a run exactly: its media counts and calls match what the run does."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from harvester.catalog import media_kind
from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.plan import make_plan
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("version", ["v17.0", "v25.0"])
async def test_plan_predicts_the_runs_calls(tmp_path: Path, version: str) -> None:
    settings = SimulatorSettings(seed=4, accounts=3, media_per_account=130, troubles=False)
    async with run_simulator(settings) as sim:
        info = {**sim.world_info(), "api_version": version}
        # The plan prices every conditional ask; no account stops asking them (K refusals in a
        # row), so the run makes them all.
        never_stop = {"harvest": {"conditional_refusals_in_a_row": 100_000}}
        toml_text, kwargs = demo_config(info, tmp_path / "lake", never_stop)
        config = parse_config(toml_text, **kwargs)
        plan = await make_plan(config)
        planned_calls = charged_calls(sim.stats())
        await run_harvest(config)
        run_calls = charged_calls(sim.stats()) - planned_calls
        world = sim.world

    for account_plan in plan.accounts:
        media = [
            *world.iter_media(account_plan.account_id),
            *world.stories(account_plan.account_id),
        ]
        kinds = Counter(str(media_kind(m.media_type, m.media_product_type)) for m in media)
        assert account_plan.media_by_kind == kinds
        assert account_plan.stories == len(world.stories(account_plan.account_id))
        assert account_plan.problem is None
    # The plan's listing pass costs what the run's listing costs, so the run makes exactly as many
    # calls as the plan both made and priced.
    assert sum(p.calls for p in plan.accounts) == run_calls
    assert planned_calls == sum(p.listing_calls for p in plan.accounts)
    # Three busy accounts: each one's in-flight cap binds before the run-wide cap.
    assert plan.bound_by == "max_requests_per_account"
    assert plan.estimate_seconds > 0


def charged_calls(stats: dict[str, Any]) -> int:
    """Calls Meta charges: every GET and every batch op, not the batch POSTs that carry them."""
    return int(stats["calls_total"]) - int(stats["by_edge"].get("batch", 0))


async def test_plan_command_reports_an_unusable_account(tmp_path: Path) -> None:
    settings = SimulatorSettings(seed=4, accounts=2, media_per_account=10)
    async with run_simulator(settings) as sim:
        toml_text, kwargs = demo_config(sim.world_info(), tmp_path / "lake")
        config_file = tmp_path / "plan.toml"
        config_file.write_text(toml_text)
        env = {**os.environ, **kwargs["env"]}
        command = [sys.executable, "-m", "harvester", "plan", str(config_file)]
        done = await anyio.run_process(command, env=env, check=False)
        expired = next(a for a in sim.world.accounts if a.token_expired)

    out = done.stdout.decode()
    assert done.returncode == 3, done.stderr.decode()
    expired_line = next(line for line in out.splitlines() if line.startswith(expired.id))
    assert "TokenInvalid: Error validating access token" in expired_line
    assert "estimated wall time:" in out
    assert not (tmp_path / "lake").exists(), "planning writes nothing to the lake"
