"""Instagram Login accounts beside Facebook Login ones, end to end over loopback HTTP.

Expectations come from the simulator's world and validity tables (never the harvester's
catalogue): each account's media answer exactly the metric set of its login.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.cli import demo_config
from harvester.config import parse_config
from harvester.graph.token_store import TokenRecord, write_token
from harvester.harvest.pipeline import run_harvest
from harvester.models import Dataset, Secret
from harvester.simulator import SimulatorSettings, World, run_simulator
from harvester.simulator.validity import LOGIN_ONLY
from tests.harvest.test_account_insights import read
from tests.harvest.test_pipeline import expected_insights as pipeline_expectations
from tests.harvest.test_version_warning import Collect

VERSION = "v25.0"
FACEBOOK_ONLY = {m for m, logins in LOGIN_ONLY.items() if logins == {"facebook"}}


def settings(*, instagram_batch: bool = False, accounts: int = 4) -> SimulatorSettings:
    return SimulatorSettings(
        seed=23,
        accounts=accounts,
        media_per_account=24,
        instagram_accounts=2,
        instagram_batch=instagram_batch,
        troubles=False,
    )


def expected_insights(world: World, account_ids: set[str]) -> set[tuple[Any, ...]]:
    """(media_id, metric, breakdown, value) of every media of the accounts, by their login."""
    rows, errors = pipeline_expectations(world, VERSION)
    assert errors == {}  # a world without troubles
    ids = {media_id for media_id, _ in media_of(world, account_ids)}
    return {row for row in rows if row[0] in ids}


def got_insights(lake: Path) -> set[tuple[Any, ...]]:
    return {
        (
            r["media_id"],
            r["metric"],
            r["breakdown"],
            r["value"] if r["value_float"] is None else r["value_float"],
        )
        for r in read(lake, Dataset.MEDIA_INSIGHTS)
    }


def media_of(world: World, account_ids: set[str]) -> set[tuple[str, str | None]]:
    return {
        (m.id, m.parent_id)
        for a in world.accounts
        if a.id in account_ids
        for top in [*world.iter_media(a.id), *world.stories(a.id)]
        for m in [top, *world.children(top.id)]
    }


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


HARVEST = {"harvest": {"conditional_refusals_in_a_row": 1000}}


@pytest.mark.anyio
@pytest.mark.parametrize("instagram_batch", [False, True], ids=["ig-refuses-batch", "ig-batches"])
async def test_both_logins_harvest_completely_in_one_run(
    tmp_path: Path, instagram_batch: bool
) -> None:
    async with run_simulator(settings(instagram_batch=instagram_batch)) as sim:
        info = sim.world_info()
        toml_text, kwargs = demo_config(info, tmp_path, HARVEST)
        report = await run_harvest(parse_config(toml_text, **kwargs))
        world, log = sim.world, list(sim.request_log)

    logins = {a.id: a.login for a in world.accounts}
    assert sorted(logins.values()) == ["facebook", "facebook", "instagram", "instagram"]
    assert {a["id"]: a["login"] for a in info["accounts"]} == logins
    everyone = set(logins)
    assert report.exit_code == 0 and report.accounts_failed == 0
    assert read(tmp_path, Dataset.ERRORS) == []
    assert got_insights(tmp_path) == expected_insights(world, everyone)
    media = {(r["media_id"], r["parent_id"]) for r in read(tmp_path, Dataset.MEDIA)}
    assert media == media_of(world, everyone)
    # Account insights: every account was asked exactly the same requests, whatever its login,
    # and answered each (no error rows above).
    asked_by_account: dict[str, set[tuple[tuple[str, str], ...]]] = {a: set() for a in everyone}
    for entry in log:
        if entry["edge"] == "account_insights" and entry["status"] == 200:
            asked_by_account[entry["account_id"]].add(tuple(sorted(entry["params"].items())))
    asked_sets = list(asked_by_account.values())
    assert asked_sets[0] and all(one == asked_sets[0] for one in asked_sets)
    account_rows = read(tmp_path, Dataset.ACCOUNT_INSIGHTS)
    metrics = {
        a: {(r["metric"], r["period"]) for r in account_rows if r["account_id"] == a}
        for a in everyone
    }
    assert len({frozenset(m) for m in metrics.values()}) == 1 and metrics[min(everyone)]
    # Each token was sent to its own login's host only, and never refused.
    token_login = {sha(a.token): a.login for a in world.accounts}
    authenticated = [e for e in log if e["token_sha256"] in token_login]
    assert len(authenticated) == len(log)
    assert [e for e in log if token_login[e["token_sha256"]] != e["host"]] == []
    assert {e["host"] for e in log} == {"facebook", "instagram"}
    assert not [e for e in log if e["error_code"] == 190]
    # No Facebook-Login-only metric was asked of an Instagram Login account, in GETs or batch ops.
    asked = [
        set(e["params"].get("metric", "").split(","))
        for e in log
        if e["host"] == "instagram" and e["edge"] == "insights"
    ]
    assert asked and not [m for m in asked if m & FACEBOOK_ONLY]
    # Instagram Login accounts confirmed their token's account once each, before anything else.
    first = {}
    for entry in log:
        if entry["host"] == "instagram":
            first.setdefault(entry["token_sha256"], entry)
    assert [e["edge"] for e in first.values()] == ["me", "me"]
    assert [e["params"] for e in first.values()] == [{"fields": "user_id,username"}] * 2
    # No token in the report or any Parquet row.
    texts = [p.read_text() for p in (tmp_path / "_runs").glob("*.json")]
    texts += [str(read(tmp_path, dataset)) for dataset in Dataset]
    assert len(texts) == 1 + len(Dataset)
    for account in world.accounts:
        assert not [t for t in texts if account.token[:24] in t]
    # "auto": batches on the Instagram host where it takes them, single GETs where it refuses.
    ig_posts = [e for e in log if e["host"] == "instagram" and e["edge"] == "batch"]
    ig_ops = [e for e in log if e["host"] == "instagram" and e["batch"]]
    assert ig_posts
    if instagram_batch:
        assert {e["status"] for e in ig_posts} == {200} and ig_ops
    else:
        assert {(e["status"], e["error_code"]) for e in ig_posts} == {(400, 100)}
        assert ig_ops == []


@pytest.mark.anyio
async def test_a_config_id_not_matching_its_token_is_one_error_row(tmp_path: Path) -> None:
    """Account 0 (Instagram Login) is configured with account 1's token: one clear error row for
    account 0, nothing harvested under its id, and the Facebook Login accounts finish."""
    async with run_simulator(settings(accounts=3)) as sim:
        info = sim.world_info()
        accounts = info["accounts"]
        wrong = {**accounts[0], "token": accounts[1]["token"]}
        toml_text, kwargs = demo_config(
            {**info, "accounts": [wrong, accounts[2]]}, tmp_path, HARVEST
        )
        report = await run_harvest(parse_config(toml_text, **kwargs))
        world, log = sim.world, list(sim.request_log)

    errors = read(tmp_path, Dataset.ERRORS)
    assert [(e["account_id"], e["object_id"], e["stage"], e["error_code"]) for e in errors] == [
        (accounts[0]["id"], accounts[0]["id"], "identity", None)
    ]
    assert errors[0]["message"] == (
        f"the Instagram Login token belongs to account {accounts[1]['id']} (@sim_account_1), "
        f"not to the configured id {accounts[0]['id']}: fix the id or the token"
    )
    assert report.exit_code == 3 and report.failed_accounts.keys() == {accounts[0]["id"]}
    # The wrong token made one call, /me, and nothing else.
    wrong_calls = [e for e in log if e["token_sha256"] == sha(accounts[1]["token"])]
    assert [e["edge"] for e in wrong_calls] == ["me"]
    fine = {accounts[2]["id"]}
    assert got_insights(tmp_path) == expected_insights(world, fine)
    media = {(r["media_id"], r["parent_id"]) for r in read(tmp_path, Dataset.MEDIA)}
    assert media == media_of(world, fine)
    assert {r["account_id"] for r in read(tmp_path, Dataset.ACCOUNT_INSIGHTS)} == fine


@pytest.mark.anyio
async def test_a_run_warns_of_an_instagram_token_expiring_within_a_week(tmp_path: Path) -> None:
    async with run_simulator(settings(accounts=2)) as sim:
        info = sim.world_info()
        account = info["accounts"][0]
        token_file = tmp_path / "ig.token"
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        write_token(token_file, Secret(account["token"]), TokenRecord(sim.world.now, expires, True))
        toml_text = (
            f"[graph]\nbase_url = '{info['base_url']}'\n"
            f"instagram_base_url = '{info['instagram_base_url']}'\n"
            f"[output]\npath = '{tmp_path / 'lake'}'\n"
            "[harvest]\nmedia_insights = false\naccount_insights = false\n"
            f"[[accounts]]\nid = '{account['id']}'\ntoken_file = 'ig.token'\nlogin = 'instagram'\n"
        )
        config = parse_config(toml_text, source="t.toml", base_dir=tmp_path, env={})
        # On the pipeline's own logger: a CLI test may have stopped "harvester" records from
        # propagating to caplog's root handler.
        handler = Collect(logging.WARNING)
        logger = logging.getLogger("harvester.harvest.pipeline")
        logger.addHandler(handler)
        try:
            report = await run_harvest(config)
        finally:
            logger.removeHandler(handler)
    assert report.exit_code == 0
    warnings = [r.getMessage() for r in handler.records]
    assert warnings == [
        f"account {account['id']}: its Instagram Login token expires "
        f"{expires.strftime('%Y-%m-%d %H:%M UTC')}; run `harvester token refresh`"
    ]
    assert not [w for w in warnings if account["token"][:24] in w]
    sidecar = orjson.loads((tmp_path / "ig.token.json").read_bytes())
    assert sidecar == {"refreshed_at": sim.world.now.isoformat(), "expires_at": expires.isoformat()}
