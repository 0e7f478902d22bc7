"""One writer per lake, shown with real `python -m harvester run` processes on one lake, on disk
and on S3 (moto on loopback), against the simulated Graph API.

A first run is frozen with SIGSTOP while it holds the lock, so the second arrives while it holds
it whatever the machine's speed: the second is refused (exit 4, naming the holder), a third with
`--wait-lock` waits, the first resumes and finishes with its normal exit code, and then the third
runs. Afterwards DuckDB finds no duplicate key in any dataset, and every lake holds the rows of
one uncontended run. Frozen past its claim's expiry, a holder is taken over by a waiting run that
finishes its job; thawed, it finds it lost the lock and commits nothing more (exit 4).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import duckdb
import orjson
import pyarrow.dataset as ds
import pytest
from anyio.abc import Process
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.cli import EXIT_LOCKED, main
from harvester.lake import layout
from harvester.lake.fs import DamagedFile, Lake, open_lake
from harvester.lake.lock import LakeLock
from harvester.models import Dataset
from harvester.simulator import SimulatorSettings, run_simulator
from harvester.simulator.server import RunningSimulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

WORLD = SimulatorSettings(seed=13, accounts=8, media_per_account=400, request_log=False)
# A run that is frozen once it committed must still have work left when it wakes (without
# latency the whole run took ~2.5 s, and on a loaded machine the freeze once came after its
# last commit, so it woke with nothing to commit and exited 3, not 4).
SLOW_WORLD = replace(WORLD, latency_ms=20.0)
SNAPSHOT = "2026-03-01"
IGNORED = ("run_id", "fetched_at", "fbtrace_id")
# What makes a row the same row twice (a doubled run repeats every one of them).
KEYS: dict[Dataset, tuple[str, ...]] = {
    Dataset.MEDIA: ("snapshot_date", "account_id", "media_id"),
    Dataset.MEDIA_INSIGHTS: ("snapshot_date", "media_id", "metric", "period", "breakdown"),
    Dataset.ACCOUNT_INSIGHTS: (
        *("snapshot_date", "account_id", "metric", "period"),
        *("end_time", "dimension", "dimension_value"),
    ),
    Dataset.ACCOUNTS: ("snapshot_date", "account_id"),
    Dataset.ERRORS: (
        *("snapshot_date", "account_id", "object_id", "stage"),
        *("error_code", "error_subcode", "message"),
    ),
}


class Runs:
    """`harvester run` of one config, as processes whose output goes to log files."""

    def __init__(self, tmp: Path, sim: RunningSimulator, lake: str, **output: Any) -> None:
        info = sim.world_info()
        self.lake_uri = lake
        self.endpoint = output.get("s3_endpoint")
        lines = ["[graph]", f"base_url = '{info['base_url']}'"]
        lines += [f"api_version = '{info['api_version']}'", "[output]", f"path = '{lake}'"]
        lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in output.items()]
        self.env = dict(os.environ)
        for i, account in enumerate(info["accounts"]):
            lines += ["[[accounts]]", f"id = '{account['id']}'", f"token_env = 'TOKEN_{i}'"]
            self.env[f"TOKEN_{i}"] = account["token"]
        self.config = tmp / f"{len(list(tmp.glob('*.toml')))}.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.tmp = tmp
        until = sim.world.now.date()
        self.window = ["--since", (until - timedelta(days=20)).isoformat(), "--until", str(until)]

    def command(self, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "harvester", "run", str(self.config), *self.window,
            "--snapshot-date", SNAPSHOT, "--log-json", *extra,
        ]  # fmt: skip

    async def start(self, name: str, *extra: str) -> tuple[Process, Path]:
        log = self.tmp / f"{name}.log"
        # Output goes to a file: a pipe nobody reads would block the run once full.
        with log.open("ab") as out:
            process = await anyio.open_process(
                self.command(*extra), env=self.env, stdout=out, stderr=out
            )
        return process, log

    async def complete(self, *extra: str) -> tuple[int, str]:
        done = await anyio.run_process(self.command(*extra), env=self.env, check=False)
        return done.returncode, done.stderr.decode()

    def lake(self) -> Lake:
        return open_lake(self.lake_uri, s3_endpoint=self.endpoint)

    def holder(self) -> dict[str, Any] | None:
        """The content of the lake's held claim, if one is held now."""
        lake = self.lake()
        for info in lake.listdir(layout.LOCK):
            if layout.claim_name(info.base_name) is None:
                continue
            try:
                claim = lake.get_json(lake.relative(info.path))
            except DamagedFile:
                # Read while its holder rewrote it: pyarrow reads an S3 object in ranged GETs,
                # and a rewrite between them mixes two bodies. The lock itself judges such a
                # claim by its mtime (`LakeLock._read`); this reader just looks again.
                continue
            if claim is not None and claim["held"]:
                return dict(claim)
        return None

    def epochs(self) -> list[str]:
        lake = self.lake()
        folders = [
            f
            for job in lake.listdir(f"{layout.STATE}/jobs")
            for f in lake.listdir(lake.relative(job.path))
        ]
        return [
            i.base_name
            for folder in folders
            for i in lake.listdir(lake.relative(folder.path))
            if layout.is_epoch(i.base_name)
        ]

    def datasets(self) -> dict[Dataset, ds.Dataset]:
        lake = self.lake()
        return {
            d: ds.dataset(
                lake.full(d.value), filesystem=lake.fs, format="parquet", partitioning="hive"
            )
            for d in Dataset
            if list(lake.files(d.value))
        }


async def until(condition: Any, process: Process | None = None) -> None:
    """Poll until `condition()` holds (the lake or a log is all a run shows)."""
    with anyio.fail_after(60):
        while not condition():
            assert process is None or process.returncode is None, "the run ended too soon"
            await anyio.sleep(0.02)


def content(runs: Runs) -> dict[str, Counter[tuple[Any, ...]]]:
    out = {}
    for dataset, data in runs.datasets().items():
        table = data.to_table()
        table = table.drop_columns([c for c in IGNORED if c in table.column_names])
        out[dataset.value] = Counter(zip(*table.to_pydict().values(), strict=True))
    return out


def duplicate_keys(runs: Runs) -> dict[str, int]:
    """Per dataset, rows beyond the first of their key, counted by DuckDB."""
    con = duckdb.connect()
    found = {}
    for dataset, data in runs.datasets().items():
        con.register(dataset.value, data)
        keys = ", ".join(KEYS[dataset])
        [row] = con.execute(
            f"SELECT count(*) - count(DISTINCT ({keys})), count(*) FROM {dataset.value}"
        ).fetchall()
        assert row[1] > 0
        found[dataset.value] = int(row[0])
    return found


async def stop_while_holding(
    runs: Runs, name: str, *, harvesting: bool = False
) -> tuple[Process, dict[str, Any]]:
    """Start a run and freeze it once it holds the lock (and, if `harvesting`, once it committed
    an epoch: its job is begun, so a run that takes over resumes it)."""
    process, _ = await runs.start(name)
    await until(lambda: runs.holder() is not None and (not harvesting or runs.epochs()), process)
    process.send_signal(signal.SIGSTOP)
    holder = runs.holder()
    assert holder is not None and process.returncode is None, "the first run ended too soon"
    assert holder["pid"] == process.pid
    return process, holder


async def test_a_second_run_is_refused_and_a_waiting_one_runs_after_on_disk_and_s3(
    tmp_path: Path,
    moto_endpoint: str,  # noqa: F811
) -> None:
    make_bucket(moto_endpoint, "locked")
    async with run_simulator(WORLD) as sim:
        reference = Runs(tmp_path, sim, str(tmp_path / "reference"))
        normal, _ = await reference.complete()
        lakes = [
            Runs(tmp_path, sim, str(tmp_path / "lake"), lock_stale_seconds=60),
            Runs(
                tmp_path,
                sim,
                "s3://locked/lake",
                lock_stale_seconds=60,
                s3_endpoint=moto_endpoint,
            ),
        ]
        for n, runs in enumerate(lakes):
            first, holder = await stop_while_holding(runs, f"first-{n}")
            code, stderr = await runs.complete()
            assert code == 4, stderr
            line = stderr.strip().splitlines()[-1]
            assert line.startswith("harvester: the lake ")
            assert f"is locked by run {holder['run_id']} (run on {holder['host']}, " in line
            assert f"pid {first.pid}) since {holder['started_at']}, last heartbeat " in line
            waiting, log = await runs.start(f"waiting-{n}", "--wait-lock", "60")
            await until(lambda log=log: "waiting up to 60 s for the lake lock" in log.read_text())
            first.send_signal(signal.SIGCONT)
            with anyio.fail_after(60):
                assert await first.wait() == normal
                assert await waiting.wait() == normal, log.read_text()
            assert runs.holder() is None

    assert normal == 3  # the simulator's planted troubles leave error rows
    expected = content(reference)
    for runs in lakes:
        assert duplicate_keys(runs) == dict.fromkeys(expected, 0)
        assert content(runs) == expected
    assert duplicate_keys(reference) == dict.fromkeys(expected, 0)


async def test_a_holder_frozen_past_its_expiry_is_taken_over_and_commits_nothing_more(
    tmp_path: Path,
) -> None:
    async with run_simulator(SLOW_WORLD) as sim:
        reference = Runs(tmp_path, sim, str(tmp_path / "reference"))
        normal, _ = await reference.complete()
        runs = Runs(
            tmp_path, sim, str(tmp_path / "lake"), lock_stale_seconds=2.0, checkpoint_seconds=0.1
        )
        frozen, holder = await stop_while_holding(runs, "frozen", harvesting=True)
        assert not list((tmp_path / "lake").glob("_state/jobs/*/*/done.json")), "froze too late"
        taker, log = await runs.start("taker", "--wait-lock", "60")
        with anyio.fail_after(60):
            assert await taker.wait() == normal, log.read_text()
        took = [line for line in log.read_text().splitlines() if "took over" in line]
        assert len(took) == 1 and holder["run_id"] in took[0], log.read_text()
        frozen.send_signal(signal.SIGCONT)
        with anyio.fail_after(60):
            assert await frozen.wait() == 4, (tmp_path / "frozen.log").read_text()[-3000:]
        last = (tmp_path / "frozen.log").read_text().strip().splitlines()[-1]
        assert last.startswith(f"harvester: run {holder['run_id']} lost the lake lock"), last

    # One job, begun by the frozen run and finished by the one that took over.
    [job] = {p.parent for p in (tmp_path / "lake").glob("_state/jobs/*/*/run-*.json")}
    assert len(list(job.glob("run-*.json"))) == 2 and (job / "done.json").exists()
    expected = content(reference)
    assert duplicate_keys(runs) == dict.fromkeys(expected, 0)
    assert content(runs) == expected


def test_compact_is_refused_while_a_run_holds_the_lake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    run = LakeLock(lake, run_id="20260301T120000Z-aaaaaa", command="run", stale_seconds=60)
    run.acquire()
    try:
        assert main(["compact", str(tmp_path / "lake")]) == EXIT_LOCKED
    finally:
        run.release()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        f"harvester: the lake {lake.root} is locked by run 20260301T120000Z-aaaaaa"
    )
    assert main(["compact", str(tmp_path / "lake"), "--wait-lock", "5"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to compact"
