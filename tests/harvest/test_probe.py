"""The catalogue checks itself: Meta's lists of valid metrics against the catalogue, by probe and
by a run that meets such a list in a rejection."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from harvester.catalog import ApiVersion, Login, MediaKind, load_catalog
from harvester.config import Config, ConfigError, parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.probe import ACCOUNT_SCOPE, PROBE_METRIC, compare, probe_catalog
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

KINDS = ("PHOTO", "VIDEO", "CAROUSEL", "REEL", "STORY", ACCOUNT_SCOPE)
EXTRA = {"REELS": ("reels_new_thing",)}
ROUTING = "harvester.harvest.routing"


def world(version: str, extra: Mapping[str, tuple[str, ...]] = {}, **kw: Any) -> SimulatorSettings:
    return SimulatorSettings(
        seed=3, accounts=3, media_per_account=30, api_version=version, extra_metrics=extra, **kw
    )


def config(
    info: dict[str, Any], lake: Path, accounts: Sequence[int] = (0,), batch_size: int = 50
) -> Config:
    text = f"[harvest]\nbatch_size = {batch_size}\n"
    text += f"[graph]\nbase_url = '{info['base_url']}'\napi_version = '{info['api_version']}'\n"
    text += f"[output]\npath = '{lake}'\n"
    env: dict[str, str] = {}
    for i in accounts:
        account = info["accounts"][i]
        text += f"[[accounts]]\nid = '{account['id']}'\ntoken_env = 'T{i}'\n"
        env[f"T{i}"] = account["token"]
    return parse_config(text, source="probe.toml", base_dir=lake.parent, env=env)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_probe_reports_exactly_the_metric_the_world_adds(tmp_path: Path) -> None:
    async with run_simulator(world("v27.0", EXTRA)) as sim:
        info = sim.world_info()
        with anyio.fail_after(20):
            report = await probe_catalog(config(info, tmp_path / "lake"))
        seen = len(sim.request_log)
    assert [k.kind for k in report.kinds] == list(KINDS)
    assert [(k.kind, k.missing, k.stale) for k in report.kinds if k.differs] == [
        ("REEL", ("reels_new_thing",), ())
    ]
    assert all(k.listed is not None and k.note == "" for k in report.kinds)
    # Listing media and stories, one call per kind, one for account insights.
    assert report.calls == seen == 2 + 5 + 1
    assert report.account_id == info["accounts"][0]["id"]
    assert report.differs


@pytest.mark.parametrize("version", ["v21.0", "v25.0", "v27.0"])
async def test_probe_of_a_world_as_meta_finds_no_difference(tmp_path: Path, version: str) -> None:
    async with run_simulator(world(version)) as sim:
        with anyio.fail_after(20):
            report = await probe_catalog(config(sim.world_info(), tmp_path / "lake"))
    assert [(k.kind, k.differs, k.note) for k in report.kinds] == [(k, False, "") for k in KINDS]
    assert report.calls == 8
    assert not report.differs


async def test_probe_uses_the_first_usable_token(tmp_path: Path) -> None:
    async with run_simulator(world("v27.0", {"ACCOUNT": ("account_new_thing",)})) as sim:
        info = sim.world_info()
        expired = sim.world.expired_token_account
        assert expired is not None and expired.id == info["accounts"][2]["id"]
        with anyio.fail_after(20):
            report = await probe_catalog(config(info, tmp_path / "lake", accounts=(2, 0)))
        probed = [r["path"] for r in sim.request_log if r["params"].get("metric") == PROBE_METRIC]
    assert report.account_id == info["accounts"][0]["id"]
    assert [(k.kind, k.missing) for k in report.kinds if k.differs] == [
        (ACCOUNT_SCOPE, ("account_new_thing",))
    ]
    assert report.calls == 1 + 8  # the refused listing, then the probe as usual
    assert len(probed) == 6


async def test_probe_needs_an_account(tmp_path: Path) -> None:
    async with run_simulator(world("v27.0")) as sim:
        info = sim.world_info()
        with pytest.raises(ConfigError, match="accounts: --probe needs at least one account"):
            text = f"[graph]\nbase_url = '{info['base_url']}'\n[output]\npath = '{tmp_path}'\n"
            text += "[discovery]\ntoken_env = 'U'\n"
            parsed = parse_config(
                text, source="p.toml", base_dir=tmp_path, env={"U": info["user_token"]}
            )
            await probe_catalog(parsed)


@pytest.mark.parametrize("login", ["facebook", "instagram"])
def test_compare_names_both_directions(login: Login) -> None:
    catalog = load_catalog()
    version = ApiVersion.parse("v27.0")
    reel = [m.name for m in catalog.media_metrics_for(MediaKind.REEL, version, login)]
    result = compare("REEL", [*reel[1:], "brand_new", reel[1]], version, login, catalog, "m1")
    assert (result.missing, result.stale, result.asked_on) == (("brand_new",), (reel[0],), "m1")
    account = sorted({m.name for m in catalog.account_metrics_for(version, login)})
    assert not compare(ACCOUNT_SCOPE, account, version, login, catalog).differs


@pytest.mark.parametrize("batch_size", [1, 50])
async def test_a_run_names_listed_metrics_the_catalogue_lacks(
    tmp_path: Path, batch_size: int
) -> None:
    # Instagram Login lacks total_likes and friends, so Meta answers the REEL request, which
    # asks them, with its list, which holds the world's extra REELS metric.
    settings = world("v27.0", EXTRA, login="instagram", troubles=False)
    handler = Collect()
    logger = logging.getLogger(ROUTING)
    logger.addHandler(handler)
    try:
        async with run_simulator(settings) as sim:
            with anyio.fail_after(30):
                lake = tmp_path / "lake"
                report = await run_harvest(config(sim.world_info(), lake, batch_size=batch_size))
            asked = {
                m for r in sim.request_log for m in str(r["params"].get("metric", "")).split(",")
            }
    finally:
        logger.removeHandler(handler)
    assert report.uncatalogued_metrics == {"REEL": ["reels_new_thing"]}
    assert ("not in catalogue: REEL", "reels_new_thing") in report.summary_rows()
    assert handler.messages == [
        "Meta lists REEL metric(s) the catalogue lacks at v27.0: reels_new_thing (not asked; "
        "`harvester metrics --probe` compares the whole catalogue)"
    ]
    assert not any("reels_new_thing" in m for m in asked)
