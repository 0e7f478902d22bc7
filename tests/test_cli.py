"""The command line as a user runs it: exit codes, one-line config errors, and no token leaks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pyarrow.dataset as ds
import pytest

from harvester.cli import main
from harvester.simulator import RunningSimulator, SimulatorSettings, run_simulator


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[graph]\napi_version = 'v17'\n",
            "[graph].api_version: 'v17' is not a version like 'v21.0'",
        ),
        ("[grpah]\n", "[grpah]: unknown table; did you mean 'graph'?"),
        ("[output]\npath = 3\n", "[output].path: expected a string, got integer"),
        (
            "[graph\n",
            "TOML syntax: Expected ']' at the end of a table declaration (at line 1, column 7)",
        ),
        (
            "[output]\npath = 'lake'\n[[accounts]]\nid = '17841400000000001'\n"
            "token_env = 'HARVESTER_TEST_UNSET_TOKEN'\n",
            "accounts[1].token_env: environment variable 'HARVESTER_TEST_UNSET_TOKEN' is unset or "
            "empty",
        ),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == f"harvester: config error: {config}: {message}"
    assert not (tmp_path / "lake").exists(), "nothing is written before the config is valid"


def test_bad_usage_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 2


def test_metrics_table_for_the_brief_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--api-version", "v17.0"]) == 0
    out = capsys.readouterr().out
    for metric in ("carousel_album_engagement", "engagement", "video_views", "taps_forward"):
        assert f"  {metric}  " in out


@pytest.mark.anyio
@pytest.mark.parametrize("flag_after_command", [False, True])
async def test_no_token_appears_anywhere(tmp_path: Path, flag_after_command: bool) -> None:
    """A real `harvester run` subprocess: grep the lake, the report, the logs and the terminal.
    With --log-json (before or after the command) stderr holds JSON lines only, stdout nothing."""
    settings = SimulatorSettings(
        seed=5,
        accounts=3,
        media_per_account=20,
        app_secret="s3cr3t-app",
        require_appsecret_proof=True,
    )
    lake = tmp_path / "lake"
    async with run_simulator(settings) as sim:
        info = sim.world_info()
        env = dict(os.environ)
        lines = [
            "[graph]",
            f"base_url = '{info['base_url']}'",
            f"api_version = '{info['api_version']}'",
            "app_secret_env = 'APP_SECRET'",
            "[output]",
            f"path = '{lake}'",
        ]
        env["APP_SECRET"] = "s3cr3t-app"
        for i, account in enumerate(info["accounts"]):
            lines += ["[[accounts]]", f"id = '{account['id']}'", f"token_env = 'TOKEN_{i}'"]
            env[f"TOKEN_{i}"] = account["token"]
        config = tmp_path / "harvest.toml"
        config.write_text("\n".join(lines) + "\n")
        command = [sys.executable, "-m", "harvester", "--log-json", "run", str(config)]
        if flag_after_command:
            command = [*command[:3], "run", str(config), "--log-json"]
        done = await anyio.run_process(command, env=env, check=False)
        secrets = [a["token"] for a in info["accounts"]] + ["s3cr3t-app"]

    assert done.returncode == 3, done.stderr.decode()  # the expired-token account leaves error rows
    assert done.stdout == b""
    logged = [orjson.loads(line) for line in done.stderr.splitlines()]
    assert logged[-1]["report"]["exit_code"] == 3
    texts = [done.stdout.decode(), done.stderr.decode()]
    texts += [p.read_text() for p in (lake / "_runs").glob("*.json")]
    for dataset in ("media", "media_insights", "errors"):
        rows = ds.dataset(lake / dataset, format="parquet", partitioning="hive").to_table()
        assert rows.num_rows > 0
        texts.append(str(rows.to_pylist()))
    for secret in secrets:
        for text in texts:
            assert secret not in text
            assert secret[:24] not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["metrics", "--api-version", "banana"],
            "harvester: --api-version: bad Graph API version 'banana': expected 'vMAJOR.MINOR', "
            "e.g. 'v21.0'",
        ),
        (["compact", "{tmp}/typo-path"], "harvester: {tmp}/typo-path: not a harvester lake"),
        (["compact", "{tmp}"], "harvester: {tmp}: not a harvester lake"),
        (
            ["run", "{tmp}/none.toml", "--since", "2026-06-01", "--until", "2026-01-01"],
            "harvester: --since 2026-06-01 is not before --until 2026-01-01",
        ),
        (
            ["plan", "{tmp}/none.toml", "--since", "2026-01-01", "--until", "2026-01-01"],
            "harvester: --since 2026-01-01 is not before --until 2026-01-01",
        ),
        (
            ["run", "{tmp}/none.toml", "--mode", "sweep", "--since", "2026-01-01"],
            "harvester: a sweep takes no --since/--until",
        ),
        (["fake-graph", "--port", "-1"], "argument --port: port must be within 0..65535: '-1'"),
        (["webhook", "x.toml", "--port", "70000"], "argument --port: 70000 is not within 0..65535"),
        (["compact", "{tmp}", "--target-mb", "0"], "argument --target-mb: 0 is not a positive"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Checked before any config is read or anything is written: the config files don't exist."""
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own usage errors
        code = exit_info.code
    assert code == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err
    assert "Traceback" not in err
    if not any(arg.startswith("--port") or arg == "--target-mb" for arg in argv):
        assert len(err.strip().splitlines()) == 1


def test_webhook_port_in_use_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hook.toml"
    config.write_text(
        '[graph]\napp_secret_env = "HOOK_SECRET"\n[output]\npath = "lake"\n'
        '[webhook]\nverify_token_env = "HOOK_VERIFY"\n'
        '[[accounts]]\nid = "17841400000000001"\ntoken_env = "HOOK_VERIFY"\n'
    )
    os.environ.setdefault("HOOK_VERIFY", "verify")
    os.environ.setdefault("HOOK_SECRET", "secret")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["webhook", str(config), "--host", "127.0.0.1", "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith(f"harvester: cannot listen on 127.0.0.1:{port}: ")
    assert len(err.splitlines()) == 1


def test_demo_exits_0_with_its_troubles_in_a_summary_of_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's first command: the planted troubles show as error rows, the run exits 0, the
    summary fits a terminal of 80 columns, and the printed DuckDB hint runs as printed."""
    out = tmp_path / "demo-lake"
    assert main(["demo", "--accounts", "4", "--media", "12", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    table = [line for line in lines if line.startswith("  ")][:-1]  # the hint's line is last
    assert table and all(len(line) <= 80 for line in table), table
    errors = next(line for line in lines if "rows: errors" in line)
    assert int(errors.split()[-1].replace(",", "")) > 0
    hint = lines[-1].strip()
    assert hint.startswith('python -c "import duckdb;')
    shown = subprocess.run(hint, shell=True, capture_output=True, text=True, check=True).stdout
    assert "media_product_type" in shown and "REELS" in shown


async def _probe(
    sim: RunningSimulator, tmp_path: Path, token: str
) -> subprocess.CompletedProcess[bytes]:
    """A real `harvester metrics --probe` subprocess with `token` for the world's first account."""
    info = sim.world_info()
    config = tmp_path / "probe.toml"
    config.write_text(
        f"[graph]\nbase_url = '{info['base_url']}'\napi_version = 'v27.0'\n"
        f"[output]\npath = '{tmp_path / 'lake'}'\n"
        f"[[accounts]]\nid = '{info['accounts'][0]['id']}'\ntoken_env = 'PROBE_TOKEN'\n"
    )
    command = [sys.executable, "-m", "harvester", "metrics", "--probe", str(config)]
    return await anyio.run_process(command, env={**os.environ, "PROBE_TOKEN": token}, check=False)


@pytest.mark.anyio
@pytest.mark.parametrize("extra", [False, True])
async def test_metrics_probe_prints_the_difference_and_its_calls(
    tmp_path: Path, extra: bool
) -> None:
    """A real `harvester metrics --probe` subprocess: exit 3 and exactly the world's extra
    REELS metric when there is one, exit 0 and no difference otherwise."""
    extras = {"REELS": ("reels_new_thing",)} if extra else {}
    settings = SimulatorSettings(seed=3, accounts=1, media_per_account=30, extra_metrics=extras)
    async with run_simulator(settings) as sim:
        account = sim.world_info()["accounts"][0]
        done = await _probe(sim, tmp_path, account["token"])
        calls = len(sim.request_log)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == (3 if extra else 0), done.stderr.decode()
    assert calls == 8
    assert lines[0] == f"probe at v27.0 (facebook login) with account {account['id']}: 8 calls"
    kinds = [line.split()[:2] for line in lines[1:] if not line.startswith(" ")]
    assert kinds == [
        [kind, "differs" if extra and kind == "REEL" else "same"]
        for kind in ("PHOTO", "VIDEO", "CAROUSEL", "REEL", "STORY", "ACCOUNT")
    ]
    details = [line.strip() for line in lines[1:] if line.startswith(" ")]
    assert details == (["Meta offers, the catalogue lacks: reels_new_thing"] if extra else [])


@pytest.mark.anyio
async def test_metrics_probe_that_compared_nothing_is_exit_3(tmp_path: Path) -> None:
    """Every token refused: each kind says it was not probed, and the probe does not pass for a
    catalogue that matches (exit 3, one stderr line naming why; the token nowhere)."""
    settings = SimulatorSettings(seed=3, accounts=1, media_per_account=5)
    async with run_simulator(settings) as sim:
        account = sim.world_info()["accounts"][0]
        wrong = "EAAG" + "x" * 150
        done = await _probe(sim, tmp_path, wrong)
        edges = [entry["edge"] for entry in sim.request_log]
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 3, err
    assert edges == ["media"]  # the listing was refused: nothing else was asked
    kinds = [line.split()[:3] for line in out.splitlines()[1:]]
    assert kinds == [
        [kind, "not", "probed:"] for kind in ("PHOTO", "VIDEO", "CAROUSEL", "REEL", "STORY")
    ] + [["ACCOUNT", "not", "probed:"]]
    [line] = err.splitlines()
    assert line == (
        f"harvester: probe compared nothing: no account could be listed ({account['id']}: "
        "TokenInvalid: Invalid OAuth access token - Cannot parse access token)"
    )
    assert wrong not in out + err


def test_metrics_probe_config_error_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["metrics", "--probe", str(tmp_path / "none.toml")]) == 2
    assert (
        capsys.readouterr().err
        == f"harvester: config error: {tmp_path}/none.toml: file: not found\n"
    )
