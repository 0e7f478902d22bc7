"""Damaged files never brick a lake: each case of issue 13 (junk in today's partition, a truncated
committed part, a truncated cursor, a truncated manifest or part or begin object of an unfinished
job) is named by `harvester doctor`, healed by the next run (which names the file in a warning),
and the lake ends with the rows of an uninterrupted run, as pyarrow.dataset reads them.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import orjson
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.cli import EXIT_OK, EXIT_USAGE, EXIT_WITH_ERRORS, demo_config, main
from harvester.config import Config, parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.models import Dataset, HarvestWindow
from harvester.simulator import SimulatorSettings, run_simulator

pytestmark = pytest.mark.anyio

DAY = date(2026, 3, 1)
CLOCK = datetime(2026, 3, 1, 13, tzinfo=UTC)
WINDOW = HarvestWindow(CLOCK - timedelta(days=10), CLOCK)
IGNORED = ("run_id", "fetched_at", "fbtrace_id")
PARTITION = f"snapshot_date={DAY}"


def world(day: date = DAY) -> SimulatorSettings:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return SimulatorSettings(seed=6, accounts=4, media_per_account=1095, now=noon)


def make_config(info: dict[str, Any], lake: str, output: dict[str, Any] | None = None) -> Config:
    # Small epochs, so a job has several manifests and dropping one leaves the others.
    settings = {
        "output": {"path": lake, "checkpoint_seconds": 0.01, **(output or {})},
        "harvest": {"lookback_days": 3},
    }
    toml_text, kwargs = demo_config(info, Path(lake), settings)
    return parse_config(toml_text, **kwargs)


async def backfill(lake: str, output: dict[str, Any] | None = None) -> RunReport:
    async with run_simulator(world()) as sim:
        config = make_config(sim.world_info(), lake, output)
        return await run_harvest(config, window=WINDOW, now=CLOCK)


async def sweep(lake: str, day: date) -> RunReport:
    async with run_simulator(world(day)) as sim:
        clock = datetime(day.year, day.month, day.day, 13, tzinfo=UTC)
        return await run_harvest(make_config(sim.world_info(), lake), mode="sweep", now=clock)


def content(
    root: str | Path, filesystem: pafs.FileSystem | None = None
) -> dict[str, Counter[tuple[Any, ...]]]:
    out = {}
    for dataset in Dataset:
        table = ds.dataset(
            f"{root}/{dataset.value}", filesystem=filesystem, format="parquet", partitioning="hive"
        ).to_table()
        table = table.drop_columns([c for c in IGNORED if c in table.column_names])
        out[dataset.value] = Counter(zip(*table.to_pydict().values(), strict=True))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter[tuple[Any, ...]]]:
    """The lake of one uninterrupted backfill."""
    lake = tmp_path_factory.mktemp("reference")
    anyio.run(backfill, str(lake))
    return content(lake)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The harvester's warning lines (its logger may not propagate after a `main()`)."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("harvester")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def doctor(*args: str) -> tuple[int, str]:
    """`harvester doctor` as a user runs it; its exit code and stdout."""
    logger = logging.getLogger("harvester")
    saved = logger.handlers[:], logger.propagate, logger.level
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main(["doctor", *args])
    finally:
        # main() sets up the CLI's logging; the tests' own warning capture comes back.
        logger.handlers[:], logger.propagate, logger.level = saved
    return code, out.getvalue()


def quarantined(lake: Path) -> dict[str, dict[str, Any]]:
    """Quarantined files (path in the lake -> note)."""
    notes = {}
    for note in lake.glob("_state/quarantine/*/**/*.note.json"):
        doc = orjson.loads(note.read_bytes())
        assert (note.parent / note.name.removesuffix(".note.json")).exists()
        notes[doc["path"]] = doc
    return notes


def part_of(lake: Path, dataset: Dataset) -> Path:
    return sorted((lake / dataset.value / PARTITION).glob("part-*.parquet"))[0]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


async def damaged_part(
    tmp_path: Path, dataset: Dataset, damage: Callable[[Path], None]
) -> tuple[Path, Path, str]:
    """A backfilled lake with one of its settled part files damaged: the lake, the file, its
    path in the lake."""
    lake = tmp_path / "lake"
    await backfill(str(lake))
    part = part_of(lake, dataset)
    damage(part)
    return lake, part, part.relative_to(lake).as_posix()


async def test_junk_file_in_todays_partition(
    tmp_path: Path, reference: Any, warnings: list[str]
) -> None:
    lake = tmp_path / "lake"
    await backfill(str(lake))
    junk = f"media/{PARTITION}/junk.parquet"
    (lake / junk).write_bytes(b"junk!")

    code, listed = doctor(str(lake))
    assert code == EXIT_WITH_ERRORS
    assert f"{junk}: not a Parquet file (5 bytes), in dataset media; quarantine" in listed

    await backfill(str(lake))
    assert [w for w in warnings if junk in w] == [
        f"damaged file {junk}: not a Parquet file (5 bytes), in dataset media; "
        "quarantine; the next harvest of this date brings its rows back"
    ]
    assert content(lake) == reference
    note = quarantined(lake)[junk]
    assert note["why"] == "not a Parquet file (5 bytes)" and note["by"]
    assert doctor(str(lake)) == (EXIT_OK, "0 damaged files\n")


async def test_truncated_committed_part_healed_by_doctor_fix_then_a_run(
    tmp_path: Path, reference: Any, warnings: list[str]
) -> None:
    lake, part, name = await damaged_part(tmp_path, Dataset.MEDIA_INSIGHTS, truncate)

    code, listed = doctor(str(lake))
    assert code == EXIT_WITH_ERRORS
    assert f"{name}: truncated Parquet file" in listed
    code, fixed = doctor(str(lake), "--fix")
    assert code == EXIT_OK
    assert fixed.endswith("1 damaged files, healed\n")
    assert not part.exists() and name in quarantined(lake)
    assert doctor(str(lake))[0] == EXIT_OK

    await backfill(str(lake))
    assert content(lake) == reference


async def test_truncated_cursor_makes_the_sweep_ask_its_default_window(
    tmp_path: Path, warnings: list[str]
) -> None:
    day2 = DAY + timedelta(days=1)
    reference = tmp_path / "reference"
    await sweep(str(reference), DAY)
    await sweep(str(reference), day2)

    lake = tmp_path / "lake"
    await sweep(str(lake), DAY)
    cursor = lake / "_state/cursor.json"
    truncate(cursor)
    size = len(cursor.read_bytes())
    code, listed = doctor(str(lake))
    assert code == EXIT_WITH_ERRORS and "_state/cursor.json: truncated JSON at byte" in listed

    await sweep(str(lake), day2)
    assert [w for w in warnings if "cursor" in w] == [
        f"damaged file _state/cursor.json: truncated JSON at byte {size}; "
        "quarantine; sweeps ask each account's default window"
    ]
    assert "_state/cursor.json" in quarantined(lake)
    assert orjson.loads(cursor.read_bytes())["accounts"]  # settling wrote a new one
    assert content(lake) == content(reference)


def reopen(lake: Path) -> Path:
    """Make the lake's settled job unfinished again, as a run killed before its end leaves it:
    no done object, its open-index entry back."""
    (folder,) = lake.glob("_state/jobs/*/*")
    (folder / "done.json").unlink()
    key, job_id = folder.parent.name, folder.name
    mode = orjson.loads((folder / "begin.json").read_bytes())["spec"]["mode"]
    entry = {"key": key, "job_id": job_id, "mode": mode}
    (lake / f"_state/open/{key}.{job_id}.json").write_bytes(orjson.dumps(entry))
    return folder


@pytest.mark.parametrize("damaged", ["manifest", "part", "begin"])
async def test_damaged_state_of_an_unfinished_job(
    tmp_path: Path, reference: Any, warnings: list[str], damaged: str
) -> None:
    lake = tmp_path / "lake"
    await backfill(str(lake))
    folder = reopen(lake)
    manifests = sorted(folder.glob("epoch-*.json"))
    assert len(manifests) > 1
    manifest = manifests[len(manifests) // 2]
    if damaged == "manifest":
        target = manifest
    elif damaged == "part":
        # The middle epoch that committed a file (an epoch may close on units without rows,
        # such as an account's own unit).
        with_files = [m for m in manifests if orjson.loads(m.read_bytes())["files"]]
        assert len(with_files) > 1
        manifest = with_files[len(with_files) // 2]
        target = lake / orjson.loads(manifest.read_bytes())["files"][0][0]
    else:
        target = folder / "begin.json"
    truncate(target)
    name = target.relative_to(lake).as_posix()

    code, listed = doctor(str(lake))
    assert code == EXIT_WITH_ERRORS
    assert listed.startswith(f"{name}: truncated "), listed

    await backfill(str(lake))
    assert [w.split(";")[0] for w in warnings if w.startswith("damaged file")] == [
        f"damaged file {name}: {listed.split(': ', 1)[1].split(';')[0]}"
    ]
    assert name in quarantined(lake)
    assert content(lake) == reference
    # Nothing but committed files is left: the dropped epoch's other files went as orphans.
    committed = {
        f[0]
        for m in lake.glob("_state/jobs/*/*/epoch-*.json")
        for f in orjson.loads(m.read_bytes())["files"]
    }
    on_disk = {p.relative_to(lake).as_posix() for p in lake.glob("*/snapshot_date=*/*.parquet")}
    assert on_disk == committed
    assert list(lake.glob("_state/open/*")) == []
    assert doctor(str(lake))[0] == EXIT_OK


def test_doctor_refuses_a_path_that_is_no_lake(tmp_path: Path) -> None:
    assert doctor(str(tmp_path / "typo"))[0] == EXIT_USAGE
    assert doctor(str(tmp_path))[0] == EXIT_USAGE


async def test_junk_on_s3_is_named_and_healed(
    tmp_path: Path,
    reference: Any,
    warnings: list[str],
    moto_endpoint: str,  # noqa: F811
) -> None:
    make_bucket(moto_endpoint, "damaged")
    uri = "s3://damaged/lake"
    output = {"s3_endpoint": moto_endpoint}
    await backfill(uri, output)
    s3 = pafs.S3FileSystem(
        endpoint_override=moto_endpoint.removeprefix("http://"), scheme="http", region="us-east-1"
    )
    junk = f"media_insights/{PARTITION}/part-zzz.parquet"
    with s3.open_output_stream(f"damaged/lake/{junk}") as out:
        out.write(b"junk!")

    code, listed = doctor(uri, "--s3-endpoint", moto_endpoint)
    assert code == EXIT_WITH_ERRORS
    assert listed.startswith(f"{junk}: not a Parquet file (5 bytes), in dataset media_insights")

    await backfill(uri, output)
    assert any(w.startswith(f"damaged file {junk}: not a Parquet file") for w in warnings)
    assert content("damaged/lake", s3) == reference
    kept = s3.get_file_info(pafs.FileSelector("damaged/lake/_state/quarantine", recursive=True))
    assert sorted(i.base_name for i in kept if i.type == pafs.FileType.File) == [
        "part-zzz.parquet",
        "part-zzz.parquet.note.json",
    ]
    assert doctor(uri, "--s3-endpoint", moto_endpoint)[0] == EXIT_OK


def corrupt_pages(path: Path) -> None:
    """Garble a file's data pages and keep its footer whole: only a full read notices."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(4, len(data) - footer):
        data[i] = 0xFF
    path.write_bytes(bytes(data))


async def test_damaged_pages_behind_a_whole_footer_are_set_aside_when_read(
    tmp_path: Path, reference: Any, warnings: list[str]
) -> None:
    lake, _, name = await damaged_part(tmp_path, Dataset.MEDIA, corrupt_pages)
    assert doctor(str(lake))[0] == EXIT_OK  # its footer looks whole

    await backfill(str(lake))  # settling reads the file to supersede its rows
    (line,) = [w for w in warnings if name in w]
    assert line.startswith(f"damaged file {name}: damaged Parquet file (")
    assert line.endswith("; quarantine; the next harvest of this date brings its rows back")
    assert quarantined(lake)[name]["by"].startswith("settling ")
    assert content(lake) == reference
