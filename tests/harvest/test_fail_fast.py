"""A run in which nothing works stops with one message and exit 5; one that recovers goes on.

Dead endpoints (a host that does not resolve, a refused port, a simulator answering only 5xx), a
version Meta does not serve and a wrong app secret, each through `harvester run` as a user
starts it; the attempts are counted from the simulator's request log, never timed.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import duckdb
import orjson
import pytest

from harvester.cli import EXIT_NOTHING_WORKS, demo_config
from harvester.config import parse_config
from harvester.graph.health import CERTAIN_AFTER
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunCounters
from harvester.simulator import FaultSettings, SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

WORLD = {"seed": 7, "accounts": 4, "media_per_account": 10}
MAX_ATTEMPTS = 50
# Tiny backoffs and a short fail-fast wait: without the watch, every account's listing alone
# would make MAX_ATTEMPTS calls, and its account insights as many again per request.
FAST: dict[str, dict[str, Any]] = {
    "graph": {"timeout_seconds": 2.0, "connect_timeout_seconds": 1.0},
    "retry": {
        "max_attempts": MAX_ATTEMPTS,
        "base_delay_seconds": 0.01,
        "max_delay_seconds": 0.05,
        "fail_fast_seconds": 0.3,
    },
}
SUFFIX = r"; all \d+ requests so far failed alike, none succeeded"


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def run_cli(
    info: dict[str, Any],
    tmp_path: Path,
    settings: dict[str, dict[str, Any]],
    env: dict[str, str] | None = None,
) -> tuple[int, list[str]]:
    """`harvester run` in a process of its own, as a user starts it: (exit code, stderr lines)."""
    text, kwargs = demo_config(info, tmp_path / "lake", settings)
    path = tmp_path / "run.toml"
    path.write_text(text)
    command = [sys.executable, "-m", "harvester", "run", str(path), "--since", "2026-01-01"]
    environ = {**os.environ, **kwargs["env"], **(env or {})}
    done = await anyio.run_process(command, env=environ, check=False)
    return done.returncode, done.stderr.decode().strip().splitlines()


def failed_report(lake: Path) -> dict[str, Any]:
    """The one run report beside the lake, which a failed run writes too."""
    (path,) = (lake / "_runs").glob("*.json")
    report: dict[str, Any] = orjson.loads(path.read_bytes())
    assert (report["status"], report["exit_code"]) == ("failed", EXIT_NOTHING_WORKS)
    assert report["failure"].startswith("NothingWorks: nothing works: ")
    return report


def error_stages(lake: Path) -> list[tuple[str, int | None]]:
    if not (lake / "errors").exists():
        return []
    rows: list[tuple[str, int | None]] = duckdb.sql(
        f"SELECT stage, error_code FROM read_parquet('{lake}/errors/**/*.parquet', "
        "hive_partitioning = true) ORDER BY ALL"
    ).fetchall()
    return rows


@pytest.mark.parametrize(
    ("base_url", "cause"),
    [
        ("http://nonexistent.invalid", "host unreachable (nonexistent.invalid: DNS)"),
        ("refused", "host unreachable (127.0.0.1:{port}: refused)"),
    ],
)
async def test_an_unreachable_host_stops_the_run(
    tmp_path: Path,
    base_url: str,
    cause: str,
) -> None:
    port = refused_port()
    async with run_simulator(SimulatorSettings(**WORLD)) as sim:
        info = sim.world_info()
    info["base_url"] = f"http://127.0.0.1:{port}" if base_url == "refused" else base_url
    code, err = await run_cli(info, tmp_path, FAST)
    assert code == EXIT_NOTHING_WORKS, err
    assert re.fullmatch(
        re.escape(f"harvester: nothing works: {cause.format(port=port)}") + SUFFIX, err[-1]
    )
    assert error_stages(tmp_path / "lake") == []
    report = failed_report(tmp_path / "lake")
    assert (report["accounts_ok"], report["accounts_failed"]) == (0, WORLD["accounts"])


async def test_an_unreachable_instagram_host_is_the_host_the_stop_names(tmp_path: Path) -> None:
    """Instagram Login accounts only: the Facebook host is never asked, so the stop names the
    Instagram host that refused them."""
    port = refused_port()
    settings = SimulatorSettings(**{**WORLD, "accounts": 2}, instagram_accounts=2)
    async with run_simulator(settings) as sim:
        info = sim.world_info()
    assert {account["login"] for account in info["accounts"]} == {"instagram"}
    info["instagram_base_url"] = f"http://127.0.0.1:{port}"
    code, err = await run_cli(info, tmp_path, FAST)
    assert code == EXIT_NOTHING_WORKS, err
    assert re.fullmatch(
        re.escape(f"harvester: nothing works: host unreachable (127.0.0.1:{port}: refused)")
        + SUFFIX,
        err[-1],
    )


async def test_a_server_answering_only_500_stops_the_run_before_the_retry_budget(
    tmp_path: Path,
) -> None:
    faults = FaultSettings(server_error=1.0)
    async with run_simulator(SimulatorSettings(**WORLD, faults=faults)) as sim:
        host = sim.world_info()["base_url"].removeprefix("http://")
        code, err = await run_cli(sim.world_info(), tmp_path, FAST)
        log = list(sim.request_log)
    assert code == EXIT_NOTHING_WORKS, err
    assert re.fullmatch(
        r"harvester: nothing works: server error \(HTTP 50[03]\) at " + re.escape(host) + SUFFIX,
        err[-1],
    )
    assert log and {e["status"] for e in log} <= {500, 503}
    # Not even each account's listing spent its attempts, let alone its account insights.
    assert len(log) < WORLD["accounts"] * MAX_ATTEMPTS
    listing = [e for e in log if e["edge"] == "media"]
    assert max(sum(e["path"] == p for e in listing) for p in {e["path"] for e in listing}) < (
        MAX_ATTEMPTS
    )


async def test_an_unknown_version_stops_the_run_after_three_attempts(
    tmp_path: Path,
) -> None:
    async with run_simulator(SimulatorSettings(**WORLD)) as sim:
        info = {**sim.world_info(), "api_version": "v99.0"}
        host = info["base_url"].removeprefix("http://")
        code, err = await run_cli(info, tmp_path, FAST)
        log = list(sim.request_log)
    assert code == EXIT_NOTHING_WORKS, err
    assert err[-1] == (
        f"harvester: nothing works: unknown API version (v99.0) at {host}; all 3 requests so far "
        "failed alike, none succeeded"
    )
    # Three failures stop the run; the requests already in flight then were the only others.
    assert len(log) < CERTAIN_AFTER + WORLD["accounts"]
    assert {(e["status"], e["error_code"]) for e in log} == {(400, 2500)}
    assert {stage for stage, _ in error_stages(tmp_path / "lake")} <= {"listing"}
    failed_report(tmp_path / "lake")


async def test_a_wrong_app_secret_stops_the_run_and_files_no_refusal(
    tmp_path: Path,
) -> None:
    settings = {**FAST, "graph": {**FAST["graph"], "app_secret_env": "DEMO_APP_SECRET"}}
    world = SimulatorSettings(**WORLD, app_secret="the-app-secret")
    async with run_simulator(world) as sim:
        info = sim.world_info()
        host = info["base_url"].removeprefix("http://")
        env = {"DEMO_APP_SECRET": "not-the-app-secret"}
        code, err = await run_cli(info, tmp_path, settings, env)
        log = list(sim.request_log)
    assert code == EXIT_NOTHING_WORKS, err
    assert err[-1] == (
        f"harvester: nothing works: wrong app secret at {host}; all 3 requests so far failed "
        "alike, none succeeded"
    )
    assert len(log) < CERTAIN_AFTER + WORLD["accounts"]
    # Filed, if at all, as the listing failures they are: never a refused breakdown or metric.
    rows = error_stages(tmp_path / "lake")
    assert {stage for stage, _ in rows} <= {"listing"}
    assert {code for _, code in rows} <= {100, 190}


async def test_a_wrong_app_secret_fails_a_lone_account_without_refusals(tmp_path: Path) -> None:
    """One account meets the wrong secret once: too few to stop the run, and its token is
    closed, so the account is failed and nothing is filed as a refusal."""
    world = SimulatorSettings(**WORLD, app_secret="the-app-secret")
    settings = {**FAST, "graph": {**FAST["graph"], "app_secret_env": "DEMO_APP_SECRET"}}
    async with run_simulator(world) as sim:
        info = sim.world_info()
        info["accounts"] = info["accounts"][:1]
        text, kwargs = demo_config(info, tmp_path, settings)
        kwargs["env"]["DEMO_APP_SECRET"] = "not-the-app-secret"
        report = await run_harvest(parse_config(text, **kwargs))
    assert (report.accounts_ok, report.accounts_failed, report.exit_code) == (0, 1, 3)
    (why,) = report.failed_accounts.values()
    assert why.startswith("AppSecretRejected: (#100) Invalid appsecret_proof")
    assert error_stages(tmp_path) == [("listing", 100)]


async def test_a_server_that_recovers_after_some_500s_does_not_stop(tmp_path: Path) -> None:
    faults = FaultSettings(server_error=0.6, seed=3)
    settings = {**FAST, "retry": {**FAST["retry"], "fail_fast_seconds": 30.0}}
    settings["harvest"] = {"account_insights": False, "batch_size": 0}
    async with run_simulator(SimulatorSettings(**WORLD, faults=faults)) as sim:
        text, kwargs = demo_config(sim.world_info(), tmp_path / "faulty", settings)
        report = await run_harvest(parse_config(text, **kwargs))
        statuses = [e["status"] for e in sim.request_log]
    async with run_simulator(SimulatorSettings(**WORLD)) as sim:
        text, kwargs = demo_config(sim.world_info(), tmp_path / "healthy", settings)
        healthy = await run_harvest(parse_config(text, **kwargs))
    assert statuses.index(200) > 0  # the run began with failures and went on
    assert report.retries > 0
    assert (report.media_listed, report.rows) == (healthy.media_listed, healthy.rows)
    assert report.failed_accounts.keys() == healthy.failed_accounts.keys()


async def test_an_account_none_of_whose_requests_succeeded_counts_as_failed(
    tmp_path: Path,
) -> None:
    async with run_simulator(SimulatorSettings(**WORLD)) as sim:
        info = sim.world_info()
        ghost = {"id": "17841400000000001", "token": info["accounts"][0]["token"]}
        info["accounts"] = [*info["accounts"], ghost]
        text, kwargs = demo_config(info, tmp_path, FAST)
        counters = RunCounters()
        report = await run_harvest(parse_config(text, **kwargs), counters=counters)
        expired = sim.world.expired_token_account
    assert (report.accounts_ok, report.accounts_failed) == (WORLD["accounts"] - 1, 2)
    # The live count (the progress display's "failed") says what the report says.
    assert (counters.accounts_done, counters.accounts_failed) == (WORLD["accounts"] + 1, 2)
    assert set(report.failed_accounts) == {ghost["id"], expired.id if expired else ""}
    assert report.failed_accounts[ghost["id"]].startswith("ObjectUnavailable: Unsupported get")
