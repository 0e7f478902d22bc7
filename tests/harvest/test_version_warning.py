"""The start of every run says when the configured API version expires soon or has expired."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from harvester.cli import main
from harvester.config import parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

WORLD = SimulatorSettings(seed=3, accounts=1, media_per_account=2)
PIPELINE = "harvester.harvest.pipeline"


class Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def config(info: dict[str, Any], lake: Path, version: str) -> Any:
    text = f"[graph]\nbase_url = '{info['base_url']}'\napi_version = '{version}'\n"
    text += f"[output]\npath = '{lake}'\n"
    text += f"[[accounts]]\nid = '{info['accounts'][0]['id']}'\ntoken_env = 'T'\n"
    env = {"T": info["accounts"][0]["token"]}
    return parse_config(text, source="v.toml", base_dir=lake.parent, env=env)


@pytest.mark.parametrize(
    ("version", "now", "expected"),
    [
        ("v21.0", datetime(2026, 12, 1, 12, tzinfo=UTC),
         "[graph] api_version: v21.0 expires within 90 days (on 2027-01-21)"),
        ("v21.0", datetime(2027, 2, 1, 12, tzinfo=UTC),
         "[graph] api_version: v21.0 expired on 2027-01-21 (Meta serves the oldest live "
         "version, v22.0, instead)"),
        ("v25.0", datetime(2026, 12, 1, 12, tzinfo=UTC), None),
    ],
)  # fmt: skip
async def test_a_run_warns_about_its_version_at_the_injected_date(
    tmp_path: Path, version: str, now: datetime, expected: str | None
) -> None:
    # A handler on the pipeline's own logger, not caplog's on the root: a CLI test may have
    # stopped "harvester" records from propagating (the CLI installs its own handler).
    handler = Collect(logging.WARNING)
    logger = logging.getLogger(PIPELINE)
    logger.addHandler(handler)
    try:
        async with run_simulator(WORLD) as sim:
            with anyio.fail_after(20):
                await run_harvest(config(sim.world_info(), tmp_path / "lake", version), now=now)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in handler.records] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("version", "today", "expected"),
    [
        ("v21.0", "2026-10-23", "warning: [graph] api_version: v21.0 expires within 90 days "
         "(on 2027-01-21)"),  # 90 days before the date
        ("v21.0", "2026-10-22", None),
        ("v21.0", "2027-01-21", "warning: [graph] api_version: v21.0 expired on 2027-01-21 "
         "(Meta serves the oldest live version, v22.0, instead)"),
        ("v25.0", "2026-12-01", None),
    ],
)  # fmt: skip
async def test_check_warns_about_the_version_at_the_injected_date(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    today: str,
    expected: str | None,
) -> None:
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        path = tmp_path / "check.toml"
        path.write_text(
            f"[graph]\nbase_url = '{info['base_url']}'\napi_version = '{version}'\n"
            f"[output]\npath = '{tmp_path / 'lake'}'\n"
            f"[[accounts]]\nid = '{info['accounts'][0]['id']}'\ntoken_env = 'T'\n"
        )
        monkeypatch.setenv("T", info["accounts"][0]["token"])
        # `main` runs its own event loop, so it gets a thread of its own here.
        argv = ["check", str(path), "--today", today]
        code = await anyio.to_thread.run_sync(main, argv)
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: config OK (1 accounts)"
    warnings = [line for line in out if line.startswith("warning: ")]
    assert warnings == ([expected] if expected else [])
    if expected:
        assert out[1] == expected
