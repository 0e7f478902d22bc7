"""`--engine ray` on a local Ray instance (2 CPUs): 4 shards over the simulated Graph API land the
lake of the local engine (on disk and on S3, from Python and from the command line against a
running cluster), a shard whose worker dies is retried into the same lake, and the shards together
keep to the app's budget.

The simulator runs as a separate process, as Meta would: Ray's workers are processes of their own
and reach it over loopback. Lakes are compared as real readers see them (pyarrow.dataset), row for
row, without the columns that say when and by which run a row was fetched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import anyio
import orjson
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

from harvester.cli import demo_config  # noqa: E402
from harvester.config import Config, parse_config  # noqa: E402
from harvester.harvest.pipeline import run_harvest  # noqa: E402
from harvester.harvest.ray_engine import ShardHook, run_on_ray, shard_of, split_accounts  # noqa: E402
from harvester.harvest.report import RunReport  # noqa: E402
from harvester.lake.fs import open_lake  # noqa: E402
from harvester.lake.lock import LakeLock, LakeLocked  # noqa: E402
from harvester.models import Dataset  # noqa: E402

pytestmark = pytest.mark.timeout(120)

SNAPSHOT = date(2026, 3, 1)
IGNORED = ("run_id", "fetched_at", "fbtrace_id")
# Checkpoints every 50 ms: a shard commits several epochs, so a kill lands between two of them.
# Media only: account insights depend on the day the test runs. No account stops asking
# conditional metrics (K refusals in a row of one run depend on reply order and on the shard).
SETTINGS: dict[str, dict[str, Any]] = {
    "harvest": {"account_insights": False, "conditional_refusals_in_a_row": 100_000},
    "output": {"checkpoint_seconds": 0.05},
    "limits": {"probe_seconds": 0.02, "probe_max_seconds": 0.2},
}
# The app budget test: this many calls per window of this many seconds, for the whole app.
APP_BUDGET, APP_WINDOW = 60, 1.0


class Simulator:
    """`python -m harvester.simulator` in its own process, with its JSONL request log."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.world_file, self.log_file = tmp / "world.json", tmp / "requests.jsonl"
        # 2 ms a reply: a shard lasts a few checkpoints, so a kill after its first lands mid-shard.
        command = [sys.executable, "-m", "harvester.simulator", "--latency-ms", "2", *args]
        command += ["--world-out", str(self.world_file), "--request-log", str(self.log_file)]
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)

    def world(self) -> dict[str, Any]:
        """The world info, once the simulator listens (it writes the file then, atomically)."""
        anyio.run(self._wait_for_world)
        info: dict[str, Any] = orjson.loads(self.world_file.read_bytes())
        return info

    async def _wait_for_world(self) -> None:
        with anyio.fail_after(30):
            while not self.world_file.exists():
                assert self.process.poll() is None, "the simulator exited"
                await anyio.sleep(0.01)

    def stats(self, base_url: str) -> dict[str, Any]:
        with urlopen(f"{base_url}/__sim/stats") as reply:
            stats: dict[str, Any] = orjson.loads(reply.read())
        return stats

    def calls(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.log_file.read_bytes().splitlines()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def local_ray(request: pytest.FixtureRequest) -> Iterator[None]:
    # Started after the S3 server's credentials are in the environment: Ray's workers inherit
    # it, as a cluster's pods get theirs from their spec.
    request.getfixturevalue("moto_endpoint")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@contextmanager
def simulator(tmp: Path, *args: str) -> Iterator[tuple[Simulator, dict[str, Any]]]:
    sim = Simulator(tmp, *args)
    try:
        yield sim, sim.world()
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, dict[str, Any]]]:
    with simulator(tmp_path_factory.mktemp("sim"), "--accounts", "12", "--media", "30") as sim:
        yield sim


@pytest.fixture(scope="module")
def reference(
    world: tuple[Simulator, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The lake of the local engine."""
    lake = tmp_path_factory.mktemp("reference")
    anyio.run(lambda: run_harvest(config(world[1], lake), snapshot_date=SNAPSHOT))
    return lake


def config(info: dict[str, Any], lake: Path, **tables: dict[str, Any]) -> Config:
    settings = {
        name: {**SETTINGS.get(name, {}), **tables.get(name, {})} for name in {*SETTINGS, *tables}
    }
    toml_text, kwargs = demo_config(info, lake, settings)
    return parse_config(toml_text, **kwargs)


def on_ray(cfg: Config, hook: ShardHook | None = None) -> RunReport:
    async def main() -> RunReport:
        return await run_on_ray(cfg, shards=4, snapshot_date=SNAPSHOT, shard_hook=hook)

    return anyio.run(main)


def lake_content(
    lake: Path | str, filesystem: pafs.FileSystem | None = None
) -> dict[str, Counter[tuple[Any, ...]]]:
    fs = filesystem or pafs.LocalFileSystem()
    out = {}
    for dataset in Dataset:
        folder = f"{lake}/{dataset.value}"
        if fs.get_file_info(folder).type == pafs.FileType.NotFound:
            out[dataset.value] = Counter()
            continue
        table = ds.dataset(folder, filesystem=fs, format="parquet", partitioning="hive").to_table()
        table = table.drop_columns([c for c in IGNORED if c in table.column_names])
        out[dataset.value] = Counter(zip(*table.to_pydict().values(), strict=True))
    return out


def settled(lake: Path) -> None:
    """One run report, every shard's job done and settled, no part left uncommitted."""
    assert len(list((lake / "_runs").iterdir())) == 1
    assert list(lake.glob("_state/open/*")) == []
    listed = {
        f[0]
        for path in lake.glob("_state/jobs/*/*/epoch-*.json")
        for f in orjson.loads(path.read_bytes())["files"]
    }
    assert {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")} == listed
    assert not [p for p in lake.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("account", "shards", "expected"),
    [("17841400000000001", 16, 9), ("17841400000000002", 16, 5), ("99", 16, 1), ("99", 1, 0)],
)
def test_an_account_lands_in_the_same_shard_in_every_process(
    account: str, shards: int, expected: int
) -> None:
    # Pinned: a different hash would give every shard new accounts, so a new job, and a rerun
    # would not resume the jobs of an interrupted run.
    assert shard_of(account, shards) == expected


def test_shards_split_the_accounts_once_each_in_config_order(
    world: tuple[Simulator, dict[str, Any]],
) -> None:
    accounts = parse_accounts(world[1])
    parts = split_accounts(accounts, 40)
    assert sorted((a for _, part in parts for a in part), key=accounts.index) == list(accounts)
    assert all(part and [shard_of(a.id, 40) for a in part] == [i] * len(part) for i, part in parts)
    assert all(list(part) == sorted(part, key=accounts.index) for _, part in parts)
    assert len(parts) < 40  # 12 accounts: the empty shards are left out


def test_four_shards_land_the_local_engines_lake(
    local_ray: None, world: tuple[Simulator, dict[str, Any]], reference: Path, tmp_path: Path
) -> None:
    info = world[1]
    report = on_ray(config(info, tmp_path))

    assert lake_content(tmp_path) == lake_content(reference)
    assert all(lake_content(reference)[d.value] for d in (Dataset.MEDIA_INSIGHTS, Dataset.ERRORS))
    settled(tmp_path)
    # Each of the 4 shards ran as its own job, and the report covers them all.
    jobs = list(tmp_path.glob("_state/jobs/*/*/done.json"))
    assert len(jobs) == len(split_accounts(parse_accounts(info), 4)) == 4
    written = orjson.loads((tmp_path / "_runs" / f"{report.run_id}.json").read_bytes())
    assert written == orjson.loads(report.to_json())
    assert report.rows == {d.value: sum(lake_content(tmp_path)[d.value].values()) for d in Dataset}
    assert report.accounts_ok + report.accounts_failed == len(info["accounts"])
    assert report.exit_code == 3  # the planted troubles leave error rows


def test_the_driver_holds_the_lake_lock_for_the_whole_run_and_its_shards_none(
    local_ray: None, world: tuple[Simulator, dict[str, Any]], tmp_path: Path
) -> None:
    cfg = config(world[1], tmp_path)
    other = LakeLock(
        open_lake(str(tmp_path)), run_id="20260301T120000Z-aaaaaa", command="run", stale_seconds=60
    )
    other.acquire()
    try:
        with pytest.raises(LakeLocked, match="locked by run 20260301T120000Z-aaaaaa"):
            on_ray(cfg)
    finally:
        other.release()

    def claims() -> list[tuple[str, bool]]:
        found = [orjson.loads(p.read_bytes()) for p in tmp_path.glob("_state/lock/*.json")]
        return [(c["command"], c["held"]) for c in found]

    async def one_holder(index: int, attempt: str) -> None:
        assert await anyio.to_thread.run_sync(claims) == [("run --engine ray", True)]

    report = on_ray(cfg, one_holder)
    assert report.exit_code == 3
    assert list(tmp_path.glob("_state/lock/*")) == []


def parse_accounts(info: dict[str, Any]) -> tuple[Any, ...]:
    return config(info, Path("unused")).accounts


def test_shards_write_one_lake_on_s3(
    local_ray: None,
    world: tuple[Simulator, dict[str, Any]],
    reference: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    endpoint: str = request.getfixturevalue("moto_endpoint")
    make_bucket(endpoint, "ray-lake")
    output = {"path": "s3://ray-lake/lake", "s3_endpoint": endpoint}
    report = on_ray(config(world[1], tmp_path, output=output))

    host = endpoint.removeprefix("http://")
    s3 = pafs.S3FileSystem(endpoint_override=host, scheme="http", region="us-east-1")
    assert lake_content("ray-lake/lake", s3) == lake_content(reference)
    assert s3.get_file_info(f"ray-lake/lake/_runs/{report.run_id}.json").is_file
    assert s3.get_file_info(pafs.FileSelector("ray-lake/lake/_state/open")) == []


def test_a_shard_whose_worker_dies_is_retried_into_the_same_lake(
    local_ray: None, world: tuple[Simulator, dict[str, Any]], reference: Path, tmp_path: Path
) -> None:
    info = world[1]
    lake, marker = tmp_path / "lake", tmp_path / "killed"
    victim = split_accounts(parse_accounts(info), 4)[0][0]

    async def die_once_after_a_commit(index: int, attempt: str) -> None:
        """The first attempt of the victim shard exits hard once it committed an epoch."""
        if index != victim or marker.exists():
            return
        with anyio.fail_after(60):
            while True:
                if list(lake.glob(f"_state/jobs/*/*/epoch-{attempt}-*.json")):
                    break
                await anyio.sleep(0.002)
        marker.write_text(attempt)
        os._exit(1)

    report = on_ray(config(info, lake), die_once_after_a_commit)

    dead = marker.read_text()
    assert lake_content(lake) == lake_content(reference)
    settled(lake)
    # The dead attempt had committed part of its shard, and the retry resumed its job.
    job = next(lake.glob(f"_state/jobs/*/*/run-{dead}.json")).parent
    assert len(list(job.glob("run-*.json"))) == 2
    first = [orjson.loads(p.read_bytes()) for p in job.glob(f"epoch-{dead}-*.json")]
    later = [orjson.loads(p.read_bytes()) for p in job.glob("epoch-*.json")]
    assert first and len(later) > len(first)
    assert report.exit_code == 3


def test_the_command_runs_on_an_existing_cluster(
    local_ray: None, world: tuple[Simulator, dict[str, Any]], reference: Path, tmp_path: Path
) -> None:
    """`harvester run --engine ray --ray-address`, as against a KubeRay cluster: this test's Ray
    stands in for the cluster, the command is a driver of its own."""
    toml_text, kwargs = demo_config(world[1], tmp_path / "lake", SETTINGS)
    (tmp_path / "run.toml").write_text(toml_text)
    command = [
        sys.executable, "-m", "harvester", "run", str(tmp_path / "run.toml"),
        "--engine", "ray", "--ray-address", ray.get_runtime_context().gcs_address,
        "--shards", "2", "--snapshot-date", SNAPSHOT.isoformat(),
    ]  # fmt: skip
    env = {**os.environ, **kwargs["env"]}
    done = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)

    assert done.returncode == 3, done.stderr.decode()
    assert lake_content(tmp_path / "lake") == lake_content(reference)
    settled(tmp_path / "lake")
    assert len(list((tmp_path / "lake").glob("_state/jobs/*/*/done.json"))) == 2
    (report,) = (tmp_path / "lake" / "_runs").iterdir()
    assert orjson.loads(report.read_bytes())["exit_code"] == 3


def test_the_shards_together_keep_to_the_apps_budget(
    local_ray: None, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    budget = ("--app-budget", str(APP_BUDGET), "--window-seconds", str(APP_WINDOW))
    sim_dir = tmp_path_factory.mktemp("budget-sim")
    with simulator(sim_dir, "--accounts", "8", "--media", "20", "--seed", "3", *budget) as (
        sim,
        info,
    ):
        limits = {
            "app_calls_per_hour": int(APP_BUDGET * 3600 / APP_WINDOW),
            "app_window_seconds": APP_WINDOW,
        }
        report = on_ray(config(info, tmp_path, limits=limits))
        stats = sim.stats(info["base_url"])
        calls = [c for c in sim.calls() if c["edge"] != "batch"]  # a batch's ops are its calls

    assert "4" not in stats["by_error_code"], "an app-level rate limit error"
    assert stats["rejected_while_blocked"] == 0
    assert report.rows[Dataset.MEDIA_INSIGHTS.value] > 0
    # More calls than one window holds, so the budget did bind...
    assert len(calls) > 2 * APP_BUDGET
    # ...and no window held more than the budget. The log stamps a call when it is answered, a
    # few ms after the simulator counted it: windows 2 % short leave room for that.
    times = sorted(c["t"] for c in calls)
    span = APP_WINDOW * 0.98
    most = max(sum(1 for u in times[i:] if u < t + span) for i, t in enumerate(times))
    assert most <= APP_BUDGET
