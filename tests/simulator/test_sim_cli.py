"""`python -m harvester.simulator`: argument mapping, --world-out, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from harvester.simulator.__main__ import build_parser, settings_from_args


def test_arguments_map_to_settings() -> None:
    args = build_parser().parse_args(
        [
            "--accounts", "4", "--media", "9", "--seed", "3", "--as-of", "2025-01-08",
            "--app-secret", "s", "--require-proof", "--account-budget", "10",
            "--window-seconds", "2", "--minute-seconds", "0.1", "--fault-rate", "stall=0.1",
            "--fault-rate", "server_error=0.2", "--no-troubles", "--latency-ms", "5",
        ]
    )  # fmt: skip
    s = settings_from_args(args)
    assert (s.accounts, s.media_per_account, s.seed) == (4, 9, 3)
    assert s.as_of == date(2025, 1, 8)
    assert (s.app_secret, s.require_appsecret_proof, s.troubles) == ("s", True, False)
    assert (s.limits.account_budget, s.limits.window_seconds, s.limits.minute_seconds) == (
        10,
        2.0,
        0.1,
    )
    assert (s.faults.stall, s.faults.server_error) == (0.1, 0.2)
    assert s.latency_ms == 5.0


def test_metric_options_map_to_settings() -> None:
    args = build_parser().parse_args(
        [
            "--extra-metric", "REELS=reels_new_thing", "--extra-metric", "reels=reels_other",
            "--extra-metric", "ACCOUNT=account_new_thing", "--login", "instagram",
            "--legacy-video-refusals", "--withdraw-breakdown", "views=media_product_type",
        ]
    )  # fmt: skip
    s = settings_from_args(args)
    assert s.withdrawn_breakdowns == {("views", "media_product_type")}
    assert dict(s.extra_metrics) == {
        "REELS": ("reels_new_thing", "reels_other"),
        "ACCOUNT": ("account_new_thing",),
    }
    assert (s.login, s.legacy_video_refusals) == ("instagram", True)
    default = settings_from_args(build_parser().parse_args([]))
    assert (dict(default.extra_metrics), default.login, default.legacy_video_refusals) == (
        {},
        "facebook",
        False,
    )


@pytest.mark.parametrize("bad", ["views", "=media_product_type", "views="])
def test_bad_withdrawn_breakdown_is_a_usage_error(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--withdraw-breakdown", bad])
    assert exc.value.code == 2
    assert "expected METRIC=KEY" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["REELS", "MOON=x", "REELS="])
def test_bad_extra_metric_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--extra-metric", bad])
    assert exc.value.code == 2
    assert "expected KIND=NAME" in capsys.readouterr().err


def test_help_describes_the_metric_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--extra-metric KIND=NAME",
        "--login",
        "--legacy-video-refusals",
        "--withdraw-breakdown METRIC=KEY",
    ):
        assert option in text
    assert "catalogue probe" in text


@pytest.mark.parametrize("bad", ["nope=0.1", "stall", "stall=2", "stall=x"])
def test_bad_fault_rate_is_a_usage_error(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--fault-rate", bad])
    assert exc.value.code == 2


@pytest.mark.parametrize("option", ["--account-budget", "--app-budget", "--token-budget"])
@pytest.mark.parametrize("bad", ["0", "-5", "1.5", "many"])
def test_a_budget_is_a_positive_count(
    option: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([option, bad])
    assert exc.value.code == 2
    assert "budget must be" in capsys.readouterr().err


def test_serves_writes_world_and_stops_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "world.json"
    cmd = [sys.executable, "-m", "harvester.simulator", "--accounts", "2", "--media", "5",
           "--competitors", "2", "--world-out", str(out)]  # fmt: skip
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        try:
            _exercise(proc.stderr.readline(), out)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0


def _exercise(line: str, out: Path) -> None:
    """Checks on a running simulator; `line` is its first stderr line, printed once listening."""
    assert "listening on" in line
    info = json.loads(out.read_text())
    assert set(info) == {
        "base_url",
        "instagram_base_url",
        "api_version",
        "app_secret",
        "accounts",
        "user_token",
        "login",
        "extra_metrics",
        "shared_to_facebook_percent",
        "competitors",
    }
    assert info["competitors"] == ["competitor_0", "competitor_1"]
    assert info["app_secret"] is None
    acc = info["accounts"][0]
    assert set(acc) == {"id", "token", "page_id", "login"}
    url = f"{info['base_url']}/v25.0/{acc['id']}?access_token={acc['token']}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert json.loads(resp.read()) == {"id": acc["id"]}
