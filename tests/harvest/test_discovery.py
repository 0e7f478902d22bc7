"""Discovery through `me/accounts` against the simulated Graph API."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from harvester.config import parse_config
from harvester.harvest.discovery import merge_accounts
from harvester.harvest.pipeline import run_harvest
from harvester.models import Account, Dataset, Secret
from harvester.simulator import SimulatorSettings, run_simulator

# Five accounts plus the page without Instagram: six pages, three pages of two on me/accounts.
SETTINGS = SimulatorSettings(seed=9, accounts=5, media_per_account=3)


def read(lake: Path, dataset: Dataset) -> list[dict[str, Any]]:
    table = ds.dataset(lake / dataset.value, format="parquet", partitioning="hive").to_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def config_text(base_url: str, lake: Path, listed: str | None) -> str:
    text = f"""
[graph]
base_url = "{base_url}"
api_version = "v25.0"
[output]
path = "{lake.as_posix()}"
[harvest]
media_insights = false
stories = false
account_insights = false
[discovery]
token_env = "DISCOVERY_TOKEN"
page_size = 2
"""
    if listed is not None:
        text += f'[[accounts]]\nid = "{listed}"\ntoken_env = "LISTED_TOKEN"\n'
    return text


@pytest.mark.anyio
async def test_discovery_pages_through_me_accounts_and_merges(tmp_path: Path) -> None:
    async with run_simulator(SETTINGS) as sim:
        world = sim.world
        listed = world.accounts[1]
        env = {"DISCOVERY_TOKEN": world.user_token, "LISTED_TOKEN": world.user_token}
        text = config_text(sim.base_url, tmp_path, listed.id)
        config = parse_config(text, source="t.toml", base_dir=tmp_path, env=env)
        report = await run_harvest(config)
        log = list(sim.request_log)

    pages = [e for e in log if e["edge"] == "me_accounts"]
    assert len(pages) == 3
    assert all(e["params"]["limit"] == "2" for e in pages)

    # Every linked account is harvested once; the listed one with the listed token.
    listing = [e for e in log if e["edge"] == "media"]
    assert sorted(e["object_id"] for e in listing) == sorted(a.id for a in world.accounts)
    tokens = {e["object_id"]: e["token_sha256"] for e in listing}
    assert tokens[listed.id] == sha(world.user_token)
    assert all(tokens[a.id] == sha(a.token) for a in world.accounts if a is not listed)

    expired = world.expired_token_account
    assert expired is not None
    media = read(tmp_path, Dataset.MEDIA)
    assert {r["account_id"] for r in media} == {a.id for a in world.accounts if a is not expired}

    # The page without Instagram is reported and skipped.
    errors = read(tmp_path, Dataset.ERRORS)
    reported = [e for e in errors if e["stage"] == "discovery"]
    assert [e["object_id"] for e in reported] == [world.orphan_page_id]
    assert "no linked Instagram professional account" in reported[0]["message"]
    assert {e["object_id"] for e in errors if e["stage"] != "discovery"} == {expired.id}
    assert report.accounts_ok + report.accounts_failed == len(world.accounts)


@pytest.mark.anyio
async def test_failed_discovery_still_harvests_listed_accounts(tmp_path: Path) -> None:
    async with run_simulator(SETTINGS) as sim:
        world = sim.world
        listed = world.accounts[0]
        env = {"DISCOVERY_TOKEN": "EAAGnot-a-real-token", "LISTED_TOKEN": listed.token}
        text = config_text(sim.base_url, tmp_path, listed.id)
        await run_harvest(parse_config(text, source="t.toml", base_dir=tmp_path, env=env))

    errors = read(tmp_path, Dataset.ERRORS)
    assert [(e["stage"], e["object_id"], e["error_code"]) for e in errors] == [
        ("discovery", "me/accounts", 190)
    ]
    assert {r["account_id"] for r in read(tmp_path, Dataset.MEDIA)} == {listed.id}


def test_discovery_alone_needs_no_listed_accounts(tmp_path: Path) -> None:
    text = config_text("http://127.0.0.1:9", tmp_path, None)
    config = parse_config(text, source="t.toml", base_dir=tmp_path, env={"DISCOVERY_TOKEN": "t"})
    assert config.accounts == ()
    assert config.discovery.token == Secret("t")
    assert config.discovery.page_size == 2


def test_listed_accounts_win_over_discovered_ones() -> None:
    listed = (Account("1", "LISTED", Secret("a")), Account("2", "LISTED", Secret("b")))
    found = (Account("2", "PAGE", Secret("c")), Account("3", "PAGE", Secret("d")))
    merged = merge_accounts(listed, found)
    assert [(a.id, a.token_env) for a in merged] == [
        ("1", "LISTED"),
        ("2", "LISTED"),
        ("3", "PAGE"),
    ]
