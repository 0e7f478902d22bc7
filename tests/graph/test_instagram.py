"""Instagram Login tokens: `harvester token refresh` (a real subprocess against the simulator's
Instagram host), the token files it writes, and preflight through `/me`."""

from __future__ import annotations

import logging
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from harvester.config import ConfigError, parse_config
from harvester.graph.token_store import TokenRecord, read_record, sidecar_path, write_token
from harvester.graph.tokens import render_table, run_preflight
from harvester.models import Secret
from harvester.simulator import SimulatorSettings, run_simulator
from tests.harvest.test_version_warning import Collect


def world(*, token_age_hours: float = 48.0) -> SimulatorSettings:
    return SimulatorSettings(
        seed=31,
        accounts=3,
        media_per_account=5,
        instagram_accounts=2,
        instagram_token_age_hours=token_age_hours,
        troubles=False,
    )


def write_config(folder: Path, info: dict[str, Any], accounts: list[str]) -> Path:
    config = folder / "harvest.toml"
    config.write_text(
        f"[graph]\nbase_url = '{info['base_url']}'\n"
        f"instagram_base_url = '{info['instagram_base_url']}'\n"
        f"[output]\npath = '{folder / 'lake'}'\n" + "".join(accounts)
    )
    return config


def file_account(account: dict[str, Any], name: str) -> str:
    return f"[[accounts]]\nid = '{account['id']}'\ntoken_file = '{name}'\nlogin = 'instagram'\n"


def plant(folder: Path, name: str, token: str, refreshed_at: datetime | None = None) -> Path:
    path = folder / name
    if refreshed_at is None:
        path.write_text(token + "\n")
        path.chmod(0o600)
    else:
        write_token(path, Secret(token), TokenRecord(refreshed_at, None, True))
    return path


async def refresh(config: Path, *extra: str) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "harvester", "token", "refresh", str(config), *extra]
    done = await anyio.run_process(command, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.anyio
async def test_refresh_rewrites_each_token_file_atomically_with_mode_0600(tmp_path: Path) -> None:
    async with run_simulator(world()) as sim:
        info = sim.world_info()
        ig = info["accounts"][:2]
        days_ago = datetime.now(UTC) - timedelta(days=2)
        # One file with a record of its age, one put there by hand (its mtime is its age).
        files = [plant(tmp_path, "a.token", ig[0]["token"], days_ago)]
        files.append(plant(tmp_path, "b.token", ig[1]["token"]))
        os.utime(files[1], (days_ago.timestamp(), days_ago.timestamp()))
        fb = info["accounts"][2]
        fb_line = f"[[accounts]]\nid = '{fb['id']}'\ntoken_env = 'FB_TOKEN'\n"
        os.environ["FB_TOKEN"] = fb["token"]
        try:
            config = write_config(
                tmp_path,
                info,
                [file_account(ig[0], "a.token"), file_account(ig[1], "b.token"), fb_line],
            )
            inodes = [f.stat().st_ino for f in files]
            code, out, err = await refresh(config)
        finally:
            del os.environ["FB_TOKEN"]
        new_tokens = [f.read_text() for f in files]
        accepted = [sim.state.router.auth.principal(t.strip()) for t in new_tokens]
        log = list(sim.request_log)

    assert (code, err) == (0, "")
    records = [read_record(f) for f in files]
    assert all(r is not None and r.from_sidecar and r.expires_at is not None for r in records)
    expiries = [r.expires_at.strftime("%Y-%m-%d %H:%M UTC") for r in records if r and r.expires_at]
    assert out.splitlines() == [
        f"{ig[0]['id']}  refreshed  expires {expiries[0]}",
        f"{ig[1]['id']}  refreshed  expires {expiries[1]}",
        f"{fb['id']}  not due    Facebook Login: nothing to refresh",
    ]
    for path, token, inode, who, account in zip(
        files, new_tokens, inodes, accepted, ig, strict=True
    ):
        assert token.startswith("IGAA") and token.endswith("\n") and token.count("\n") == 1
        assert token.strip() != account["token"]
        assert who is not None and who.account == ig.index(account)  # the simulator took it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(sidecar_path(path).stat().st_mode) == 0o600
        assert path.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    assert sorted(os.listdir(tmp_path)) == [
        "a.token",
        "a.token.json",
        "b.token",
        "b.token.json",
        "harvest.toml",
    ]
    refreshes = [e for e in log if e["edge"] == "refresh_access_token"]
    assert [(e["host"], e["path"], e["params"], e["status"]) for e in refreshes] == [
        ("instagram", "/refresh_access_token", {"grant_type": "ig_refresh_token"}, 200)
    ] * 2
    for secret in [a["token"] for a in info["accounts"]] + [t.strip() for t in new_tokens]:
        assert secret not in out + err and secret[:24] not in out + err

    # Just refreshed: nothing is due, no call is made.
    async with run_simulator(world()) as sim:
        info2 = sim.world_info()
        config = write_config(
            tmp_path, info2, [file_account(ig[0], "a.token"), file_account(ig[1], "b.token")]
        )
        code, out, err = await refresh(config, "--account", ig[1]["id"])
        assert [e for e in sim.request_log if e["edge"] == "refresh_access_token"] == []
    assert (code, err) == (0, "")
    assert out == (
        f"{ig[1]['id']}  not due    refreshed 0.0 h ago; Meta refreshes tokens at least 24 h old\n"
    )


@pytest.mark.anyio
async def test_a_refused_refresh_leaves_the_token_file_as_it_was(tmp_path: Path) -> None:
    """The token file says the token is two days old, Meta knows it is one hour old and refuses
    (as it does under 24 h): the file and its record stay byte for byte, exit 3. An account whose
    token comes from the environment is told how to move it into a file."""
    async with run_simulator(world(token_age_hours=1)) as sim:
        info = sim.world_info()
        ig = info["accounts"][:2]
        path = plant(tmp_path, "a.token", ig[0]["token"], datetime.now(UTC) - timedelta(days=2))
        before = (path.read_bytes(), sidecar_path(path).read_bytes(), path.stat().st_mtime_ns)
        env_line = f"[[accounts]]\nid = '{ig[1]['id']}'\ntoken_env = 'IG_B'\nlogin = 'instagram'\n"
        os.environ["IG_B"] = ig[1]["token"]
        try:
            config = write_config(tmp_path, info, [file_account(ig[0], "a.token"), env_line])
            code, out, err = await refresh(config)
        finally:
            del os.environ["IG_B"]
        log = list(sim.request_log)

    assert code == 3
    assert out.splitlines() == [
        f"{ig[0]['id']}  failed     Meta refused: Unsupported request - method type: get",
        f"{ig[1]['id']}  failed     its token comes from the environment variable IG_B, which "
        "the harvester cannot write back; put the token in a file (chmod 600) and set "
        'token_file = "<file>" instead of token_env = "IG_B"',
    ]
    assert err == "2 of 2 tokens not refreshed\n"
    after = (path.read_bytes(), sidecar_path(path).read_bytes(), path.stat().st_mtime_ns)
    assert after == before
    assert sorted(os.listdir(tmp_path)) == ["a.token", "a.token.json", "harvest.toml"]
    assert [(e["edge"], e["status"]) for e in log] == [("refresh_access_token", 400)]
    for account in ig:
        assert account["token"] not in out + err and account["token"][:24] not in out + err


@pytest.mark.anyio
async def test_refresh_of_an_unknown_account_is_a_usage_error(tmp_path: Path) -> None:
    async with run_simulator(world()) as sim:
        info = sim.world_info()
        plant(tmp_path, "a.token", info["accounts"][0]["token"])
        config = write_config(tmp_path, info, [file_account(info["accounts"][0], "a.token")])
        code, out, err = await refresh(config, "--account", "17841400000000999")
    assert (code, out) == (2, "")
    assert err == f"harvester: account 17841400000000999 is not in {config}\n"


@pytest.mark.anyio
async def test_preflight_of_instagram_login_tokens(tmp_path: Path) -> None:
    """Valid with its expiry from the token file's record; valid with expiry unknown (a token
    from the environment); another account's token; a token on the wrong host (190)."""
    async with run_simulator(world()) as sim:
        info = sim.world_info()
        ig, fb = info["accounts"][:2], info["accounts"][2]
        now = datetime.now(UTC)
        write_token(
            tmp_path / "a.token",
            Secret(ig[0]["token"]),
            TokenRecord(now, now + timedelta(days=59, hours=12), True),
        )
        text = (
            f"[graph]\nbase_url = '{info['base_url']}'\n"
            f"instagram_base_url = '{info['instagram_base_url']}'\n"
            f"[output]\npath = '{tmp_path / 'lake'}'\n"
            + file_account(ig[0], "a.token")
            + f"[[accounts]]\nid = '{ig[1]['id']}'\ntoken_env = 'B'\nlogin = 'instagram'\n"
            + f"[[accounts]]\nid = '{fb['id']}'\ntoken_env = 'WRONG'\nlogin = 'instagram'\n"
            + f"[[accounts]]\nid = '{ig[0]['id'][:-1]}9'\ntoken_env = 'B'\nlogin = 'instagram'\n"
        )
        env = {"B": ig[1]["token"], "WRONG": fb["token"]}
        config = parse_config(text, source="t.toml", base_dir=tmp_path, env=env)
        checks = await run_preflight(config, now=now)
    statuses = [(c.account_id, c.valid, c.status) for c in checks]
    assert statuses[0] == (ig[0]["id"], True, "OK")
    assert round(checks[0].days_left or 0, 1) == 59.5
    assert statuses[1] == (ig[1]["id"], True, "OK")
    assert statuses[2] == (
        fb["id"],
        False,
        "UNUSABLE: token invalid (Invalid OAuth access token - Cannot parse access token)",
    )
    assert statuses[3][1:] == (
        False,
        f"UNUSABLE: wrong account (the Instagram Login token belongs to account {ig[1]['id']} "
        f"(@sim_account_1), not to the configured id {checks[3].account_id}: fix the id or the "
        "token)",
    )
    # Meta's Instagram host does not answer me/permissions here: said, not counted as missing.
    assert checks[1].problem == (
        "permissions not reported by graph.instagram.com (Unsupported request - method type: get)"
    )
    table = render_table(checks).splitlines()
    assert table[1].split()[:5] == [ig[0]["id"], "file", str(tmp_path / "a.token"), "yes", "59.5"]
    assert table[2].split()[:4] == [ig[1]["id"], "B", "yes", "unknown"]


@pytest.mark.parametrize(
    ("files", "account", "problem"),
    [
        ({}, "token_file = 'none.token'\n", "file '{base}/none.token' not found"),
        (
            {"e.token": "  \n"},
            "token_file = 'e.token'\n",
            "'{base}/e.token' is empty (it must hold",
        ),
        (
            {"a.token": "IGAAx"},
            "token_file = 'a.token'\ntoken_env = 'X'\n",
            "set token_env or token_file, not both",
        ),
        ({"a.token": "IGAAx"}, "token_file = 'a.token'\nlogin = 'threads'\n", "'threads' is not"),
    ],
)
def test_token_file_config_errors_name_the_key(
    tmp_path: Path, files: dict[str, str], account: str, problem: str
) -> None:
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    text = f"[output]\npath = '{tmp_path / 'lake'}'\n[[accounts]]\nid = '1'\n" + account
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.toml", base_dir=tmp_path, env={"X": "t"})
    assert problem.format(base=tmp_path) in str(caught.value)
    assert str(caught.value).startswith("c.toml: accounts[1].")


def test_a_token_file_others_may_read_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "a.token"
    path.write_text("IGAAsecretvalue\n")
    path.chmod(0o644)
    text = (
        f"[output]\npath = '{tmp_path / 'lake'}'\n[[accounts]]\nid = '1'\n"
        "token_file = 'a.token'\nlogin = 'instagram'\n"
    )
    # On the config's own logger: a CLI test may have stopped "harvester" records from
    # propagating to caplog's root handler.
    handler = Collect(logging.WARNING)
    logger = logging.getLogger("harvester.config")
    logger.addHandler(handler)
    try:
        config = parse_config(text, source="c.toml", base_dir=tmp_path, env={})
    finally:
        logger.removeHandler(handler)
    account = config.accounts[0]
    assert (account.login, account.token_file, account.token) == (
        "instagram",
        str(path),
        Secret("IGAAsecretvalue"),
    )
    messages = [r.getMessage() for r in handler.records]
    assert messages == [
        f"c.toml: accounts[1].token_file: '{path}' is readable by others (mode 644); chmod 600 it"
    ]
    assert "IGAAsecretvalue" not in messages[0]


def test_the_accounts_csv_takes_login_and_token_file(tmp_path: Path) -> None:
    (tmp_path / "a.token").write_text("IGAAone\n")
    (tmp_path / "a.token").chmod(0o600)
    (tmp_path / "env.csv").write_text("id,token_env,login\n11,T,facebook\n12,T,instagram\n")
    (tmp_path / "file.csv").write_text("id,token_file,login\n13,a.token,instagram\n")
    base = f"[output]\npath = '{tmp_path / 'lake'}'\n[sources]\naccounts_csv = "
    got = []
    for name in ("env.csv", "file.csv"):
        config = parse_config(base + f"'{name}'\n", source="c", base_dir=tmp_path, env={"T": "t"})
        got += [(a.id, a.login, a.token_env, a.token_file) for a in config.accounts]
    assert got == [
        ("11", "facebook", "T", None),
        ("12", "instagram", "T", None),
        ("13", "instagram", "", str(tmp_path / "a.token")),
    ]


def test_world_info_names_each_accounts_login() -> None:
    async def info() -> dict[str, Any]:
        async with run_simulator(world()) as sim:
            return sim.world_info()

    got = anyio.run(info)
    assert [a["login"] for a in got["accounts"]] == ["instagram", "instagram", "facebook"]
    assert [a["token"][:4] for a in got["accounts"]] == ["IGAA", "IGAA", "EAAG"]
    assert got["instagram_base_url"].startswith("http://127.0.0.1:")
    assert got["instagram_base_url"] != got["base_url"]
    assert orjson.loads(orjson.dumps(got)) == got
