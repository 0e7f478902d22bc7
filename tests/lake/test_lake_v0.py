"""A lake written by the harvester before its reorganisation (commit 337a1ec) keeps working.

`tests/data/lake_v0` holds a finished backfill (job "a", snapshot date 2026-03-01) and an
unfinished one (job "b", 2026-03-02) that the old code was cancelled in, with some media and one
account committed; `tests/data/make_v0_lake.py` wrote it and `lake_v0.json` says how (world,
config text, run arguments). With the current code, on a copy: the same config resumes job "b";
the lake then equals, row for row, the lake the current code writes when nothing interrupts it;
a sweep works on it; `harvester compact` merges it without changing a row.

Only the public API (`harvester.parse_config`, `run_harvest`, `HarvestWindow`), the CLI and the
simulator are used; the lake is read with pyarrow.dataset and DuckDB, never the harvester's reader.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import harvester
from harvester import HarvestWindow, RunReport, parse_config, run_harvest
from harvester.models import MediaDetails
from harvester.simulator import RunningSimulator, SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

DATA = Path(__file__).resolve().parents[1] / "data"
V0 = DATA / "lake_v0"
SPEC: dict[str, Any] = json.loads((DATA / "lake_v0.json").read_text())
JOBS: dict[str, Any] = SPEC["jobs"]
DATASETS = ("media", "media_insights", "account_insights", "errors")
# When and by which run a row was fetched, and Meta's (simulated) trace id, which differs per call.
IGNORED = ("run_id", "fetched_at", "fbtrace_id")
CAP = "app_calls_per_hour = "
SWEEP_CLOCK = datetime(2026, 3, 2, 18, tzinfo=UTC)


def settings() -> SimulatorSettings:
    world = SPEC["world"]
    return SimulatorSettings(**{**world, "now": datetime.fromisoformat(world["now"])})


def job_config(name: str, info: dict[str, Any], lake: Path, *, cap: bool = True) -> Any:
    """The job's config as the old code ran it; `cap=False` drops the app call cap (limits are
    not part of a job: the same job, without the wait the cap imposes on a whole run)."""
    text = JOBS[name]["config"].format(base_url=info["base_url"], lake=lake)
    if not cap:
        text = "\n".join(line for line in text.splitlines() if not line.startswith(CAP)) + "\n"
    env = {}
    for i, account in enumerate(info["accounts"]):
        text += f"[[accounts]]\nid = '{account['id']}'\ntoken_env = 'TOKEN_{i}'\n"
        env[f"TOKEN_{i}"] = account["token"]
    return parse_config(text, source=f"job-{name}.toml", base_dir=lake.parent, env=env)


async def run_job(sim: RunningSimulator, name: str, lake: Path, *, cap: bool = True) -> RunReport:
    job = JOBS[name]
    since, until = (None if v is None else datetime.fromisoformat(v) for v in
                    (job["since"], job["until"]))  # fmt: skip
    config = job_config(name, sim.world_info(), lake, cap=cap)
    with anyio.fail_after(20):  # past the cap a call waits most of a minute: fail instead
        return await run_harvest(
            config,
            window=HarvestWindow(since, until),
            now=datetime.fromisoformat(job["now"]),
            snapshot_date=date.fromisoformat(job["snapshot_date"]),
        )


async def sweep(sim: RunningSimulator, lake: Path) -> RunReport:
    with anyio.fail_after(20):
        config = job_config("a", sim.world_info(), lake)
        return await run_harvest(config, mode="sweep", now=SWEEP_CLOCK)


def read(folder: Path, **options: Any) -> pa.Table:
    """A dataset of old and new files as a reader must read it (README, "The value columns"):
    with the union of the files' schemas, and `value_float` (issue 14) null in a lake whose
    insight files all predate it, so an old lake and a new one compare row for row."""
    files = sorted(folder.rglob("*.parquet"))
    schema = pa.unify_schemas([pq.read_schema(f) for f in files]) if files else None
    if schema is not None and options.get("partitioning") == "hive":
        schema = schema.append(pa.field("snapshot_date", pa.string()))  # the folder's
    table = pads.dataset(folder, format="parquet", schema=schema, **options).to_table()
    if "value" in table.column_names and "value_float" not in table.column_names:
        table = table.append_column("value_float", pa.nulls(table.num_rows, pa.float64()))
    return table


# The `media` columns added with issue 16 (what the listing says of a media, and `source`): null
# in the old code's rows, which a resumed job keeps as they are (it does not list a done media's
# unit again), so media rows compare on the other columns; `new_media_columns_are_filled` checks
# these apart.
ADDED_MEDIA_COLUMNS = [*MediaDetails._fields, "source"]


def rows(lake: Path, dataset: str, *, keep_all: bool = False) -> Counter[tuple[Any, ...]]:
    table = read(lake / dataset, partitioning="hive")
    if not keep_all:
        table = table.drop_columns([c for c in IGNORED if c in table.column_names])
        if dataset == "media":
            table = table.drop_columns([c for c in ADDED_MEDIA_COLUMNS if c in table.column_names])
    table = table.select(sorted(table.column_names))
    return Counter(zip(*table.to_pydict().values(), strict=True))


def content(lake: Path, *, keep_all: bool = False) -> dict[str, Counter[tuple[Any, ...]]]:
    return {d: rows(lake, d, keep_all=keep_all) for d in DATASETS}


ACCOUNT_COLUMNS = sorted(
    {"account_id", "api_version", "dimension", "dimension_value", "end_time", "metric"}
    | {"period", "snapshot_date", "value"}
)
METRIC, END_TIME = ACCOUNT_COLUMNS.index("metric"), ACCOUNT_COLUMNS.index("end_time")


MEDIA_COLUMNS = sorted(
    {"account_id", "api_version", "breakdown", "media_id", "media_product_type", "metric"}
    | {"media_timestamp", "media_type", "period", "snapshot_date", "value", "value_float"}
)
DIMENSION = ACCOUNT_COLUMNS.index("dimension")
# What the catalogue gained after the old code wrote the lake (issue 14; Meta added them for all
# versions): these media metrics, reposts for stories too (the old code asked it of the other
# kinds), and for accounts reposts and reach's breakdowns as a total. The units the old run
# committed hold none of their rows; every unit the current code fetches holds them.
ADDED_MEDIA = {"total_likes", "total_comments", "total_views", "link_clicks", "reels_skip_rate"}
ADDED_MEDIA |= {"crossposted_views", "facebook_views"}


def added_since_v0(dataset: str, row: tuple[Any, ...]) -> bool:
    if dataset == "media_insights":
        metric = row[MEDIA_COLUMNS.index("metric")]
        story = row[MEDIA_COLUMNS.index("media_product_type")] == "STORY"
        return metric in ADDED_MEDIA or (metric == "reposts" and story)
    if dataset == "account_insights":
        metric = row[METRIC]
        return metric == "reposts" or (metric == "reach" and row[DIMENSION] is not None)
    return False


def unit_of(dataset: str, row: dict[str, Any]) -> tuple[Any, ...] | None:
    """What an insights row was fetched as: a media on a snapshot date, or an account's day
    (a daily row closing at midnight is the day before it); None for other datasets."""
    if dataset == "media_insights":
        return (dataset, row["snapshot_date"], row["media_id"])
    if dataset == "account_insights" and row["end_time"] is not None:
        day = (row["end_time"] - timedelta(microseconds=1)).date()
        return (dataset, row["snapshot_date"], row["account_id"], day)
    return None


def old_units(lake: Path) -> set[tuple[Any, ...]]:
    """The units whose rows in `lake` the old code's runs wrote (a sweep may have fetched one
    again since)."""
    runs = {job["run_id"] for job in JOBS.values()}
    found = set()
    for dataset in ("media_insights", "account_insights"):
        for row in read(lake / dataset, partitioning="hive").to_pylist():
            if row["run_id"] in runs:
                found.add(unit_of(dataset, row))
    return found - {None}


def assert_as_reference(
    got: dict[str, Counter[tuple[Any, ...]]],
    reference: dict[str, Counter[tuple[Any, ...]]],
    lake: Path,
) -> None:
    """`got` (a resumed old lake) holds the reference lake's rows exactly, but the rows of the
    metrics added since the old code (`added_since_v0`) for the units the old code fetched."""
    assert {d: got[d] - reference[d] for d in got} == {d: Counter() for d in got}
    missing = {d: reference[d] - got[d] for d in reference}
    assert sum(missing["media_insights"].values()) and sum(missing["account_insights"].values())
    units = old_units(lake)
    columns = {
        "media_insights": MEDIA_COLUMNS,
        "account_insights": [*ACCOUNT_COLUMNS, "value_float"],
    }
    for dataset, rows_missing in missing.items():
        for row in rows_missing:
            named = dict(zip(columns.get(dataset, []), row, strict=True))
            assert added_since_v0(dataset, row) and unit_of(dataset, named) in units, row


def still_served(
    sim: RunningSimulator, lake: Path, found: Counter[tuple[Any, ...]]
) -> Counter[tuple[Any, ...]]:
    """The account_insights rows whose day the simulator still answers for."""
    names = pads.dataset(lake / "account_insights", format="parquet", partitioning="hive")
    assert sorted(set(names.schema.names) - set(IGNORED)) == ACCOUNT_COLUMNS
    oldest = sim.world.account_data_from
    return Counter(
        {
            r: n
            for r, n in found.items()
            if r[END_TIME] is None or r[END_TIME].timestamp() >= oldest(r[METRIC])
        }
    )


def query(lake: Path, sql: str) -> list[tuple[Any, ...]]:
    """DuckDB over the lake: `{media}` etc. in `sql` stand for the datasets' hive globs."""
    globs = {
        d: f"read_parquet('{lake}/{d}/**/*.parquet', hive_partitioning = true, "
        "union_by_name = true)"
        for d in DATASETS
    }
    return duckdb.connect().execute(sql.format(**globs)).fetchall()


def listed(lake: Path) -> dict[str, set[str]]:
    """Top-level media ids per snapshot date (carousel children have a parent_id)."""
    found = query(
        lake,
        "SELECT snapshot_date::VARCHAR, list(media_id) FROM {media} WHERE parent_id IS NULL "
        "GROUP BY 1",
    )
    return {day: set(ids) for day, ids in found}


def expected_media(
    sim: RunningSimulator, since: datetime | None, until: datetime | None
) -> set[str]:
    """What a backfill of [since, until) lists: media in the window and live stories of the
    accounts whose token works."""
    world = sim.world
    out = set()
    for account in world.accounts:
        if account.token_expired:
            continue
        for media in world.iter_media(account.id):
            if (since is None or media.timestamp >= since) and (
                until is None or media.timestamp < until
            ):
                out.add(media.id)
        out.update(story.id for story in world.stories(account.id))
    return out


def new_media_columns_are_filled(lake: Path) -> None:
    """Old and new `media` files read together (DuckDB by name, Polars diagonally): the issue-16
    columns are null exactly in the old code's rows, and `source` is "owned" in every new one."""
    old_runs = tuple(job["run_id"] for job in JOBS.values())
    sql = (
        "SELECT run_id IN {old}, source, count(*), count(caption), count(shortcode) "
        "FROM {{media}} GROUP BY ALL ORDER BY ALL"
    )
    [new, old] = query(lake, sql.format(old=old_runs))
    assert new[:2] == (False, "owned") and new[2] == new[4]  # every new media has its shortcode
    assert old[:2] == (True, None) and old[2] > 0 and old[3:] == (0, 0)
    frames = [pl.read_parquet(p) for p in sorted((lake / "media").rglob("*.parquet"))]
    media = pl.concat(frames, how="diagonal_relaxed")
    assert media.height == new[2] + old[2]
    by_old = media.filter(pl.col("run_id").is_in(old_runs)).select(ADDED_MEDIA_COLUMNS)
    assert by_old.height == old[2]
    assert by_old.null_count().row(0) == (old[2],) * len(ADDED_MEDIA_COLUMNS)


def parquet_files(lake: Path) -> set[str]:
    return {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")}


def test_the_data_is_small_and_unfinished() -> None:
    files = [p for p in V0.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    assert not [p for p in files if p.name.endswith(".tmp")]
    # Job "b" is open: an entry under _state/open, manifests, no done marker.
    [entry] = (V0 / "_state" / "open").iterdir()
    assert entry.name.startswith("backfill-")
    assert len(list(V0.glob("_state/jobs/*/*/done.json"))) == 1
    assert len(list(V0.glob("_state/jobs/*/*/epoch-*.json"))) >= 2
    # The old code's runs: job "a"'s report (a cancelled run writes none), parts of both dates.
    assert [p.name for p in (V0 / "_runs").iterdir()] == [f"{JOBS['a']['run_id']}.json"]
    assert {p.split("/")[1] for p in parquet_files(V0)} == {
        "snapshot_date=2026-03-01",
        "snapshot_date=2026-03-02",
    }


async def test_an_old_lake_resumes_sweeps_and_compacts(tmp_path: Path) -> None:
    lake, reference = tmp_path / "lake", tmp_path / "reference"
    shutil.copytree(V0, lake)
    before = content(lake)
    old_a = {d: rows_of(lake, d, JOBS["a"]["snapshot_date"]) for d in DATASETS}
    # The old run's last epoch committed everything it held (no orphan parts): what its parts
    # hold is what its manifests say is done.
    committed = listed(lake)[JOBS["b"]["snapshot_date"]]
    accounts_done = {
        a for (a,) in query(lake, "SELECT DISTINCT account_id FROM {account_insights} "
                            "WHERE snapshot_date = '2026-03-02'")
    }  # fmt: skip
    b_since = datetime.fromisoformat(JOBS["b"]["since"])
    b_until = datetime.fromisoformat(JOBS["b"]["until"])

    async with run_simulator(settings()) as sim:
        expected_a = expected_media(sim, datetime.fromisoformat(JOBS["a"]["since"]), None)
        expected_b = expected_media(sim, b_since, b_until)
        assert committed and committed < expected_b  # some of job b's media, not all
        live = {a.id for a in sim.world.accounts if not a.token_expired}
        assert accounts_done and accounts_done < live  # one account done, one not

        # 1. The same config (cap included) resumes job b: nothing done is asked again.
        sim.request_log.clear()
        report = await run_job(sim, "b", lake)
        asked = {e["object_id"] for e in sim.request_log if e["edge"] == "insights"}
        assert report.exit_code == 3  # the expired token's listing error
        assert asked == expected_b - committed
        again = {e["account_id"] for e in sim.request_log if e["edge"] == "account_insights"}
        assert again == live - accounts_done

        # 2. The current code's uninterrupted lake of the same jobs.
        assert (await run_job(sim, "a", reference)).exit_code == 3
        assert (await run_job(sim, "b", reference, cap=False)).exit_code == 3

        resumed = content(lake)
        # Meta keeps follower_count and online_followers for 30 days only, and the simulator
        # now does too: the old run's rows for older days are kept but no longer fetched.
        served = still_served(sim, lake, resumed["account_insights"])
        stale = {row[METRIC] for row in resumed["account_insights"] - served}
        assert stale <= {"follower_count", "online_followers"}
        assert_as_reference({**resumed, "account_insights": served}, content(reference), lake)
        assert {d: rows_of(lake, d, JOBS["a"]["snapshot_date"]) for d in DATASETS} == old_a
        days = {"2026-03-01": expected_a, "2026-03-02": expected_b}
        assert listed(lake) == days
        assert all(before[d] <= resumed[d] for d in DATASETS)  # the old rows are all kept
        # Each media once per snapshot date, carousel children included.
        [(media_rows, media_keys)] = query(
            lake, "SELECT count(*), count(DISTINCT (snapshot_date, media_id)) FROM {media}"
        )
        assert media_rows == media_keys == sum(resumed["media"].values())
        new_media_columns_are_filled(lake)
        # The job is settled: nothing left open, no file outside a manifest, no temporary file.
        assert not list((lake / "_state" / "open").glob("*"))
        assert not [p for p in lake.rglob("*") if p.name.endswith(".tmp")]
        assert len(list(lake.glob("_runs/*.json"))) == 2

        # 3. A sweep the same day as job b, on the old lake and on the reference.
        old_parts = old_b_parts(lake)
        swept = await sweep(sim, lake)
        assert swept.exit_code == 3
        assert (await sweep(sim, reference)).exit_code == 3
        # The cursor job a (a backfill without --until) left: media since its listing (less a
        # day) or the 7-day lookback, whichever reaches further back.
        lookback = datetime(2026, 2, 23, tzinfo=UTC)
        expected_sweep = expected_media(sim, lookback, None)

    after_sweep = content(lake)
    served = still_served(sim, lake, after_sweep["account_insights"])
    assert_as_reference({**after_sweep, "account_insights": served}, content(reference), lake)
    assert listed(lake) == {"2026-03-01": expected_a, "2026-03-02": expected_b | expected_sweep}
    [(media_rows, media_keys)] = query(
        lake, "SELECT count(*), count(DISTINCT (snapshot_date, media_id)) FROM {media}"
    )
    assert media_rows == media_keys
    # The live stories job b's first (old) run had committed are now the sweep's: the old code's
    # part files were rewritten in place without them, their other rows kept.
    stories = query(
        lake,
        "SELECT DISTINCT run_id FROM {media} WHERE snapshot_date = '2026-03-02' "
        "AND media_product_type = 'STORY'",
    )
    assert stories == [(swept.run_id,)]
    assert old_parts.pop("STORY") and old_b_parts(lake) == old_parts
    # Account insights of the sweep's date: job b's January and the sweep's days, each key once.
    [(ai_rows, ai_keys)] = query(
        lake,
        "SELECT count(*), count(DISTINCT (account_id, metric, period, end_time, dimension, "
        "dimension_value)) FROM {account_insights} WHERE snapshot_date = '2026-03-02'",
    )
    assert ai_rows == ai_keys > 0

    # 4. `harvester compact` through the CLI: one file per dataset and date, the same rows.
    full = content(lake, keep_all=True)
    files_before = parquet_files(lake)
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "harvester", "compact", str(lake)], check=False, env=cli_env()
        )
    assert done.returncode == 0, done.stderr.decode()
    assert content(lake, keep_all=True) == full
    files_after = parquet_files(lake)
    partitions = {p.rsplit("/", 1)[0] for p in files_before}
    assert {p.rsplit("/", 1)[0] for p in files_after} == partitions
    assert len(files_after) == len(partitions) < len(files_before)
    assert not list(lake.glob("_state/compactions/*"))


def old_b_parts(lake: Path) -> dict[str, Counter[str]]:
    """Media rows in the parts of job b's old run, per media_product_type: file name -> rows."""
    found = query(
        lake,
        "SELECT media_product_type, parse_filename(filename) FROM read_parquet("
        f"'{lake}/media/snapshot_date=2026-03-02/part-{JOBS['b']['run_id']}-*.parquet', "
        "filename = true)",
    )
    out: dict[str, Counter[str]] = {}
    for product, name in found:
        out.setdefault(product, Counter())[name] += 1
    return out


def rows_of(lake: Path, dataset: str, day: str) -> Counter[tuple[Any, ...]]:
    folder = lake / dataset / f"snapshot_date={day}"
    if not folder.exists():
        return Counter()
    table = read(folder)
    table = table.select(sorted(table.column_names))
    return Counter(zip(*table.to_pydict().values(), strict=True))


def cli_env() -> dict[str, str]:
    """The CLI runs the package these tests import, wherever pytest was started from."""
    root = str(Path(harvester.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
