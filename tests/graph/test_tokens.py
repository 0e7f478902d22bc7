"""Preflight (`harvester check`) against the simulator's planted token troubles."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from harvester.cli import demo_config, main
from harvester.config import parse_config
from harvester.graph.tokens import render_table, run_preflight
from harvester.simulator import FaultSettings, SimulatorSettings, run_simulator

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Accounts 0 and 1 are fine; 2 expires in 3 days; 3 lacks instagram_manage_insights; 4 is expired.
SETTINGS = SimulatorSettings(seed=7, accounts=5, media_per_account=2, now=NOW)
LIVE = SimulatorSettings(seed=7, accounts=5, media_per_account=2)


@pytest.mark.anyio
async def test_preflight_finds_expired_expiring_and_underpermissioned_tokens(
    tmp_path: Path,
) -> None:
    async with run_simulator(SETTINGS) as sim:
        text, kwargs = demo_config(sim.world_info(), tmp_path)
        checks = await run_preflight(parse_config(text, **kwargs), now=NOW)
        world = sim.world
        log = list(sim.request_log)

    by_id = {c.account_id: c for c in checks}
    assert [c.account_id for c in checks] == [a.id for a in world.accounts]
    good, other, expiring, lacking, expired = (by_id[a.id] for a in world.accounts)
    assert world.expiring_token_account is world.accounts[2]
    assert world.permission_missing_account is world.accounts[3]
    assert world.expired_token_account is world.accounts[4]

    assert (good.valid, good.missing, good.status) == (True, (), "OK")
    assert good.days_left == pytest.approx(59.0)
    assert other.usable
    assert (expiring.usable, expiring.status) == (True, "WARN: token expires in 3.0 days")
    assert (lacking.valid, lacking.usable) == (True, False)
    assert lacking.missing == ("instagram_manage_insights",)
    assert lacking.status == "UNUSABLE: missing instagram_manage_insights"
    assert (expired.valid, expired.usable) == (False, False)
    assert expired.status.startswith("UNUSABLE: token expired (Error validating access token")

    # Tokens never reach the request log, not even as debug_token's input_token.
    tokens = {a.token for a in world.accounts}
    assert not tokens & {v for e in log for v in e["params"].values()}
    assert {e["edge"] for e in log} == {"debug_token", "me_permissions"}


@pytest.mark.anyio
async def test_check_command_prints_the_table_and_fails_on_unusable_accounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI measures expiry from the real clock, so this world's clock is the real one too.
    async with run_simulator(LIVE) as sim:
        text, kwargs = demo_config(sim.world_info(), tmp_path / "lake")
        for name, value in kwargs["env"].items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "check.toml"
        path.write_text(text)
        world = sim.world
        # `main` runs its own event loop, so it gets a thread of its own here.
        code = await anyio.to_thread.run_sync(main, ["check", str(path)])

    out = capsys.readouterr().out.splitlines()
    assert code == 3
    assert out[0] == f"{path}: config OK (5 accounts)"
    header, *lines = out[1:7]
    assert header.split() == [
        "account", "token_env", "valid", "expires", "in", "missing", "permissions", "status"
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines}
    first, expiring, lacking, expired = (world.accounts[i].id for i in (0, 2, 3, 4))
    assert rows[first].split()[2:5] == ["yes", "59.0", "d"]
    assert rows[first].endswith("  OK")
    assert rows[expiring].endswith("WARN: token expires in 3.0 days")
    assert "instagram_manage_insights" in rows[lacking]
    assert rows[lacking].endswith("UNUSABLE: missing instagram_manage_insights")
    assert rows[expired].split()[2] == "no"
    assert "UNUSABLE: token expired (Error validating access token" in rows[expired]


@pytest.mark.anyio
async def test_check_passes_when_every_account_is_usable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with run_simulator(LIVE) as sim:
        info = sim.world_info()
        info["accounts"] = info["accounts"][:3]  # the good ones and the expiring one
        text, kwargs = demo_config(info, tmp_path / "lake")
        for name, value in kwargs["env"].items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "check.toml"
        path.write_text(text)
        code = await anyio.to_thread.run_sync(main, ["check", str(path)])
    assert code == 0
    assert "WARN: token expires in" in capsys.readouterr().out


def test_check_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[graph]\napi_version = 'v17'\n")
    assert main(["check", str(path)]) == 2
    assert "api_version" in capsys.readouterr().err


FAST_RETRY = {"max_attempts": 3, "base_delay_seconds": 0.01, "max_delay_seconds": 0.02}


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("dns", "UNUSABLE: host unreachable (nonexistent.invalid: DNS)"),
        ("refused", "UNUSABLE: host unreachable ({host}: refused)"),
        ("500", "UNUSABLE: server error (HTTP 503)"),  # the simulator's 5xx for debug_token
        ("version", "UNUSABLE: unknown API version (v99.0)"),
        ("secret", "UNUSABLE: wrong app secret"),
    ],
)
@pytest.mark.anyio
async def test_preflight_names_what_stopped_the_check(
    tmp_path: Path, case: str, status: str
) -> None:
    faults = FaultSettings(server_error=1.0 if case == "500" else 0.0)
    secret = "the-app-secret" if case == "secret" else None
    settings = replace(SETTINGS, faults=faults, app_secret=secret)
    extra: dict[str, dict[str, str | int | float | bool]] = {"retry": FAST_RETRY}
    async with run_simulator(settings) as sim:
        info = sim.world_info()
        if case == "dns":
            info["base_url"] = "http://nonexistent.invalid"
        elif case == "refused":
            info["base_url"] = _refused_url()
        elif case == "version":
            info["api_version"] = "v99.0"
        elif case == "secret":
            extra["graph"] = {"app_secret_env": "DEMO_APP_SECRET"}
        text, kwargs = demo_config(info, tmp_path, extra)
        kwargs["env"]["DEMO_APP_SECRET"] = "not-the-app-secret"
        checks = await run_preflight(parse_config(text, **kwargs), now=NOW)
        expired = sim.world.expired_token_account
    host = info["base_url"].removeprefix("http://")
    assert expired is not None
    for check in checks:
        if case == "secret" and check.account_id == expired.id:
            # Meta checks the token before the proof: this token's own problem shows.
            assert check.status.startswith("UNUSABLE: token expired (Error validating access")
            assert (check.valid, check.usable) == (False, False)
            continue
        assert check.status == status.format(host=host)
        assert (check.valid, check.usable, check.expires_at, check.missing) == (
            None,
            False,
            None,
            (),
        )
    table = render_table(checks).splitlines()
    assert [line.split()[2] for line in table[1:]].count("?") == len(checks) - (case == "secret")


@pytest.mark.anyio
async def test_preflight_names_the_instagram_host_when_only_it_is_unreachable(
    tmp_path: Path,
) -> None:
    """Instagram Login accounts go to graph.instagram.com: when that host refuses connections,
    their check names it, not the Facebook host that answers the other accounts."""
    settings = replace(SETTINGS, accounts=3, instagram_accounts=2, media_per_account=1)
    async with run_simulator(settings) as sim:
        info = sim.world_info()
        info["instagram_base_url"] = _refused_url()
        text, kwargs = demo_config(info, tmp_path, {"retry": FAST_RETRY})
        checks = await run_preflight(parse_config(text, **kwargs), now=NOW)
    instagram = info["instagram_base_url"].removeprefix("http://")
    logins = [account.get("login", "facebook") for account in info["accounts"]]
    assert logins.count("instagram") == 2
    statuses = [check.status for check in checks]
    assert [s for s, login in zip(statuses, logins, strict=True) if login == "instagram"] == [
        f"UNUSABLE: host unreachable ({instagram}: refused)"
    ] * 2
    assert all(
        "unreachable" not in s
        for s, login in zip(statuses, logins, strict=True)
        if login == "facebook"
    )
