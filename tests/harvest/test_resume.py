"""Crash-proof runs: a real `python -m harvester run` killed with SIGKILL (and stopped with Ctrl-C)
at several points of a 200-account run, resumed, ends with the lake of an uninterrupted run.

The simulated Graph API runs in this process for the whole test, so every run sees one world;
the lakes are compared as real readers see them (pyarrow.dataset), row for row, without the two
columns that say when and by which run a row was fetched.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import orjson
import pyarrow.dataset as ds
import pytest
from anyio.abc import Process

from harvester.models import Dataset
from harvester.simulator import RunningSimulator, SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

# 1,100 media over three years: about two per account in the two-day window, plus live stories.
WORLD = SimulatorSettings(seed=9, accounts=200, media_per_account=1100, request_log=True)
SNAPSHOT = "2026-03-01"
# When and by which run a row was fetched; Meta's (simulated) trace id differs per call.
IGNORED = ("run_id", "fetched_at", "fbtrace_id")


def write_config(
    tmp: Path, info: dict[str, Any], lake: Path, checkpoint: float
) -> tuple[Path, dict[str, str]]:
    lines = [
        "[graph]",
        f"base_url = '{info['base_url']}'",
        f"api_version = '{info['api_version']}'",
        "[output]",
        f"path = '{lake}'",
        f"checkpoint_seconds = {checkpoint}",
        "[limits]",
        "max_accounts_in_flight = 32",
        # An account stops asking conditional metrics after K refusals in a row of one run, which
        # depends on reply order and restarts with a resumed run: never stop, to compare lakes.
        "[harvest]",
        "conditional_refusals_in_a_row = 100000",
    ]
    env = dict(os.environ)
    for i, account in enumerate(info["accounts"]):
        lines += ["[[accounts]]", f"id = '{account['id']}'", f"token_env = 'TOKEN_{i}'"]
        env[f"TOKEN_{i}"] = account["token"]
    path = tmp / f"{lake.name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, env


def lake_content(lake: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    out = {}
    for dataset in Dataset:
        if not (lake / dataset.value).exists():
            out[dataset.value] = Counter()
            continue
        table = ds.dataset(lake / dataset.value, format="parquet", partitioning="hive").to_table()
        table = table.drop_columns([c for c in IGNORED if c in table.column_names])
        out[dataset.value] = Counter(zip(*table.to_pydict().values(), strict=True))
    return out


def manifests(lake: Path) -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted(lake.glob("_state/jobs/*/*/epoch-*.json"))]


def open_parts(lake: Path) -> list[Path]:
    """Parts being written: a kill now leaves them behind for the next run to delete."""
    return list(lake.glob("*/snapshot_date=*/.part-*.tmp"))


def runs(lake: Path) -> list[Path]:
    return sorted(lake.glob("_state/jobs/*/*/run-*.json"))


class Harvester:
    def __init__(self, config: Path, env: dict[str, str], since: str, until: str) -> None:
        self.command = [
            sys.executable, "-m", "harvester", "--log-json", "run", str(config),
            "--since", since, "--until", until, "--snapshot-date", SNAPSHOT,
        ]  # fmt: skip
        self.env = env

    async def start(self, log: Path) -> Process:
        # Output goes to a file: a pipe nobody reads would block the run once full.
        with log.open("ab") as out:
            return await anyio.open_process(self.command, env=self.env, stdout=out, stderr=out)

    async def complete(self) -> tuple[int, str]:
        done = await anyio.run_process(self.command, env=self.env, check=False)
        return done.returncode, done.stderr.decode()


async def wait_until(process: Process, condition: Any) -> None:
    """Poll the lake (the run's only visible state) until `condition()` holds."""
    with anyio.fail_after(60):
        while not condition():
            assert process.returncode is None, "the run ended before the kill point"
            await anyio.sleep(0.01)


async def kill(process: Process, signum: int = signal.SIGKILL) -> int:
    process.send_signal(signum)
    with anyio.fail_after(30):
        return await process.wait()


async def reference(
    sim: RunningSimulator, tmp_path: Path, days: int
) -> tuple[dict[str, Any], tuple[str, str], int]:
    """The world's info, a window of `days` up to its today, and the exit code of an
    uninterrupted run of it into `tmp_path / "reference"`; the request log is cleared after."""
    info = sim.world_info()
    until = sim.world.now.date()
    window = ((until - timedelta(days=days)).isoformat(), until.isoformat())
    config, env = write_config(tmp_path, info, tmp_path / "reference", checkpoint=300)
    code, _ = await Harvester(config, env, *window).complete()
    sim.request_log.clear()
    return info, window, code


async def test_killed_and_interrupted_runs_resume_to_the_uninterrupted_lake(tmp_path: Path) -> None:
    async with run_simulator(WORLD) as sim:
        info, window, code = await reference(sim, tmp_path, days=2)
        assert code == 3  # the planted troubles leave error rows

        lake = tmp_path / "crashed"
        config, env = write_config(tmp_path, info, lake, checkpoint=0.1)
        harvester = Harvester(config, env, *window)
        done_before: list[tuple[float, set[str]]] = []

        out = tmp_path / "runs.log"
        # 1: killed as soon as its run is registered, before any manifest.
        process = await harvester.start(out)
        await wait_until(process, lambda: runs(lake))
        assert await kill(process) == -signal.SIGKILL
        assert manifests(lake) == []
        # 2 and 3: killed after some manifests, then after several more, each time while parts
        # are being written.
        for more in (1, 4):
            process = await harvester.start(out)
            target = len(manifests(lake)) + more
            # Also once some media are committed: the first manifests may hold account
            # insights pieces and profiles only (they run beside the media).
            await wait_until(
                process,
                lambda t=target: (
                    len(manifests(lake)) >= t
                    and bool(open_parts(lake))
                    and any(manifest["media"] for manifest in manifests(lake))
                ),
            )
            assert await kill(process) == -signal.SIGKILL
            done = {m for manifest in manifests(lake) for m in manifest["media"]}
            done_before.append((sim.request_log[-1]["t"], done))
        # 4: Ctrl-C: in-flight work is committed, the run says it can be resumed, exits 130.
        process = await harvester.start(out)
        target = len(manifests(lake)) + 2
        await wait_until(process, lambda: len(manifests(lake)) >= target)
        assert await kill(process, signal.SIGINT) == 130
        # The end: the same command finishes the job.
        code, stderr = await harvester.complete()
        assert code == 3, stderr
        log = list(sim.request_log)
        live = {a.id for a in sim.world.accounts if not a.token_expired}

    assert len(runs(lake)) == 5
    assert "uncommitted part files" in out.read_text()
    assert lake_content(lake) == lake_content(tmp_path / "reference")
    # The profiles (`accounts`) went with their accounts' units: each live account's once.
    profiles = ds.dataset(lake / "accounts", format="parquet", partitioning="hive").to_table()
    assert sorted(profiles.column("account_id").to_pylist()) == sorted(live)
    # Completed media were never asked again by a later run.
    for killed_at, done in done_before:
        assert done
        later = {e["object_id"] for e in log if e["edge"] == "insights" and e["t"] > killed_at}
        assert not later & done
    # Every Parquet file left is one a manifest committed; no temporary file is left behind.
    listed = {f[0] for manifest in manifests(lake) for f in manifest["files"]}
    on_disk = {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")}
    assert on_disk == listed
    assert not [p for p in lake.rglob("*") if p.name.endswith(".tmp")]
    # The job is settled: a new run would start a fresh job.
    assert list(lake.glob("_state/open/*")) == []
    # One stream per dataset: an uninterrupted 200-account run writes one file per dataset.
    reference_files = list((tmp_path / "reference").rglob("*.parquet"))
    assert len(reference_files) == len(Dataset)


async def test_ctrl_c_message_says_the_run_resumes(tmp_path: Path) -> None:
    async with run_simulator(WORLD) as sim:
        info = sim.world_info()
        until = sim.world.now.date()
        window = ((until - timedelta(days=2)).isoformat(), until.isoformat())
        lake = tmp_path / "lake"
        config, env = write_config(tmp_path, info, lake, checkpoint=0.2)
        harvester = Harvester(config, env, *window)
        process = await harvester.start(tmp_path / "run.log")
        await wait_until(process, lambda: manifests(lake))
        assert await kill(process, signal.SIGTERM) == 130
    assert "the same command resumes it" in (tmp_path / "run.log").read_text()
    assert list(lake.glob("_state/open/*"))  # the job is open, waiting for the same command
    (path,) = (lake / "_runs").glob("*.json")  # an interrupted run reports too
    report = orjson.loads(path.read_bytes())
    assert (report["status"], report["exit_code"], report["failure"]) == ("interrupted", 130, None)
    assert report["rows"]["media"] > 0  # what it committed before it stopped


# A long account-insights phase: a year of windows for a few accounts with few media, each reply
# a little late (account insights are asked one request at a time per account).
# Answers slow enough that an account's year of account insights (~40 full POSTs) spans several
# epochs: at 2 ms a faster simulator finished an account within the first epoch, leaving no
# moment with pieces committed and no account complete.
LONG_INSIGHTS = SimulatorSettings(
    seed=3, accounts=3, media_per_account=20, troubles=False, latency_ms=25.0, request_log=True
)


def pieces_committed(lake: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Account-insights pieces the manifests name, with the files of their manifests."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for manifest in manifests(lake):
        for unit in manifest["other"]:
            if unit.startswith("account_insights:"):
                out[unit] = [tuple(f) for f in manifest["files"]]
    return out


async def test_a_kill_during_account_insights_loses_at_most_an_epoch(tmp_path: Path) -> None:
    """Epochs close every checkpoint_seconds while account insights run (no media unit arrives),
    each naming the request windows it holds; the resumed run asks none of them again, and ends
    with the lake of an uninterrupted run."""
    async with run_simulator(LONG_INSIGHTS) as sim:
        info, window, code = await reference(sim, tmp_path, days=365)
        assert code == 0

        lake = tmp_path / "crashed"
        config, env = write_config(tmp_path, info, lake, checkpoint=0.2)
        harvester = Harvester(config, env, *window)
        process = await harvester.start(tmp_path / "run.log")
        # Killed once epochs hold account insights and while no account is complete yet.
        await wait_until(process, lambda: len(pieces_committed(lake)) >= 4)
        assert await kill(process) == -signal.SIGKILL
        killed_at = sim.request_log[-1]["t"]
        committed = pieces_committed(lake)
        assert not any(m["accounts"] for m in manifests(lake))
        for files in committed.values():
            held = [(path, rows) for path, dataset, rows in files if dataset == "account_insights"]
            assert held and all(rows > 0 and (lake / path).is_file() for path, rows in held)
        code, stderr = await harvester.complete()
        assert code == 0, stderr
        log = list(sim.request_log)

    assert lake_content(lake) == lake_content(tmp_path / "reference")
    # No window of a committed piece was asked again.
    asked_again = {
        (e["object_id"], e["params"].get("since"), e["params"].get("until"))
        for e in log
        if e["edge"] == "account_insights" and e["t"] > killed_at
    }
    for unit in committed:
        account, rest = unit.removeprefix("account_insights:").split(":", 1)
        if rest == "lifetime":
            continue
        since, until_ = rest.split("+00:00:", 1)  # ISO times, both in UTC
        lo = datetime.fromisoformat(since + "+00:00").timestamp()
        hi = datetime.fromisoformat(until_).timestamp()
        again = [a for a in asked_again if a[0] == account and a[1] and lo <= int(a[1]) < hi]
        assert again == [], unit
