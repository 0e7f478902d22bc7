"""The command line as a user runs it: exit codes, one-line config errors, and no token leaks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pyarrow.dataset as ds
import pytest

from harvester.cli import main
from harvester.simulator import SimulatorSettings, run_simulator


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
async def test_no_token_appears_anywhere(tmp_path: Path) -> None:
    """A real `harvester run` subprocess: grep the lake, the report, the logs and the terminal."""
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
        done = await anyio.run_process(command, env=env, check=False)
        secrets = [a["token"] for a in info["accounts"]] + ["s3cr3t-app"]

    assert done.returncode == 3, done.stderr.decode()  # the expired-token account leaves error rows
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
