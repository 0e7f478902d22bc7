"""`lake.doctor`: every unreadable lake file is named (`DamagedFile`), and healing quarantines it
without ever deleting rows a reader still needs (the run-level cases: tests/harvest/
test_damaged_lake.py)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harvester.cli import main
from harvester.lake.checkpoint import open_jobs
from harvester.lake.compact import compact, recover_compactions
from harvester.lake.doctor import Damage, examine, heal
from harvester.lake.fs import DamagedFile, open_lake
from lake.test_compact import PARTITION, PLANS, lake_of_small_files, rows


def parts(root: Path) -> list[Path]:
    return sorted((root / PARTITION).glob("part-*.parquet"))


def doctor(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["doctor", *args])
    return code, out.getvalue()


def test_unreadable_files_are_named_with_what_is_wrong(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    (tmp_path / "a.json").write_bytes(b'{"accounts": {"1": ')
    (tmp_path / "b.json").write_bytes(b'{"accounts": }')
    (tmp_path / "c.json").write_bytes(b"[1]")
    (tmp_path / "junk.parquet").write_bytes(b"junk!")
    table = pa.table({"x": list(range(1000))})
    pq.write_table(table, tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "half.parquet").write_bytes(data[: len(data) // 2])

    with pytest.raises(DamagedFile) as raised:
        lake.get_json("a.json")
    assert (raised.value.path, raised.value.why) == ("a.json", "truncated JSON at byte 19")
    assert str(raised.value) == "a.json: truncated JSON at byte 19"
    with pytest.raises(DamagedFile, match=r"^b.json: not JSON \(.* at byte 13\)$"):
        lake.get_json("b.json")
    with pytest.raises(DamagedFile, match=r"^c\.json: a JSON list, not an object$"):
        lake.get_object("c.json", "accounts")
    with pytest.raises(DamagedFile, match=r"^junk.parquet: not a Parquet file \(5 bytes\)$"):
        lake.read_parquet("junk.parquet")
    with pytest.raises(DamagedFile, match=r"^half.parquet: truncated Parquet file \(\d+ bytes"):
        lake.read_parquet("half.parquet")
    assert lake.get_json("absent.json") is None
    assert lake.parquet_problem("whole.parquet", ("x",)) is None
    assert lake.parquet_problem("whole.parquet", ("media_id",)) == "schema lacks column media_id"
    assert lake.parquet_problem("junk.parquet", ("x",)) == "not a Parquet file (5 bytes)"


def test_compact_heals_junk_then_merges(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path)
    before = rows(tmp_path)
    (tmp_path / PARTITION / "junk.parquet").write_bytes(b"junk!")
    (tmp_path / PARTITION / "notes.txt").write_bytes(b"a user's note")

    report = compact(lake, target_mb=1)
    assert report.skipped == [] and len(report.merged) == 1
    assert rows(tmp_path) == before
    kept = sorted(p.name for p in tmp_path.glob("_state/quarantine/*/**/*") if p.is_file())
    assert kept == ["junk.parquet", "junk.parquet.note.json", "notes.txt", "notes.txt.note.json"]


def test_compact_names_a_damaged_part_of_an_unfinished_job(tmp_path: Path) -> None:
    lake_of_small_files(tmp_path, finish=False)
    damaged = parts(tmp_path)[2]
    damaged.write_bytes(damaged.read_bytes()[:100])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["compact", str(tmp_path)]) == 0
    name = damaged.relative_to(tmp_path).as_posix()
    # Named and healed: the damaged epoch and the three after it are gone, the job still waits
    # for its config (so its partition is still not compacted).
    assert f"damaged file {name}: truncated Parquet file (100 bytes, no footer)" in err.getvalue()
    assert len(parts(tmp_path)) == 2
    assert len(list(tmp_path.glob("_state/jobs/*/*/epoch-*.json"))) == 2
    assert len(list(tmp_path.glob("_state/quarantine/*/_state/jobs/*/*/epoch-*[0-9].json"))) == 4


def test_a_truncated_merge_output_never_deletes_its_inputs(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path)
    before = rows(tmp_path)
    inputs = [p.relative_to(tmp_path).as_posix() for p in parts(tmp_path)]
    output = f"{PARTITION}/part-compact-20260301T130000Z-abcdef-00000.parquet"
    plan = f"{PLANS}/20260301T130000Z-abcdef-00000.json"
    lake.put_json(plan, {"inputs": inputs, "output": output})
    (tmp_path / output).write_bytes(b"PAR1 half an upload")

    assert recover_compactions(lake) == 1
    assert all((tmp_path / p).exists() for p in inputs) and (tmp_path / plan).exists()

    (healed,) = heal(lake, by="test")
    assert healed.path == output and healed.why.startswith("truncated Parquet file")
    assert not (tmp_path / output).exists() and not (tmp_path / plan).exists()
    assert rows(tmp_path) == before
    assert len(compact(lake, target_mb=1).merged) == 1
    assert rows(tmp_path) == before


def test_a_damaged_plan_is_quarantined_only_when_nothing_was_merged(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path)
    lost = f"{PLANS}/20260301T130000Z-abcdef-00000.json"
    merged = f"{PLANS}/20260301T130000Z-abcdef-00001.json"
    output = f"{PARTITION}/part-compact-20260301T130000Z-abcdef-00001.parquet"
    (tmp_path / PLANS).mkdir()
    for plan in (lost, merged):
        (tmp_path / plan).write_bytes(b'{"inputs": ["media_ins')
    pq.write_table(pq.read_table(parts(tmp_path)[0]), tmp_path / output)

    assert examine(lake) == [
        Damage(lost, "truncated JSON at byte 22", "quarantine; no merge output exists"),
        Damage(
            merged,
            "truncated JSON at byte 22",
            f"left in place: its merge output {output} exists and the inputs it replaced "
            "cannot be known; check them and move the plan aside by hand",
            healed=False,
        ),
    ]
    assert doctor(str(tmp_path), "--fix")[0] == 3  # one is left for a person
    assert not (tmp_path / lost).exists() and (tmp_path / merged).exists()
    recover_compactions(lake)  # and it never fails a run
    assert (tmp_path / output).exists() and len(parts(tmp_path)) == 7


def test_state_objects_of_an_unfinished_job_heal_in_place(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path, finish=False)
    (job,) = open_jobs(lake)
    (run,) = tmp_path.glob("_state/jobs/*/*/run-*.json")
    run.write_bytes(b'{"started_')
    (tmp_path / job.entry).write_bytes(b"")
    report = tmp_path / "_runs/20260301T120000Z-aaaaaa.json"
    report.parent.mkdir()
    report.write_bytes(b'{"run_id": "2026')

    code, listed = doctor(str(tmp_path))
    assert code == 3
    assert listed.splitlines() == [
        f"{job.entry}: empty file, not JSON; rewrite it from the job's begin object",
        f"{run.relative_to(tmp_path).as_posix()}: truncated JSON at byte 10; "
        "quarantine and register the run again",
        "_runs/20260301T120000Z-aaaaaa.json: truncated JSON at byte 16; quarantine",
        "3 damaged files",
    ]
    assert doctor(str(tmp_path), "--fix")[0] == 0
    assert open_jobs(lake) == [job]
    assert orjson.loads(run.read_bytes())["healed_by"] == "doctor"
    assert not report.exists()
    assert len(parts(tmp_path)) == 6  # no epoch was dropped
    assert doctor(str(tmp_path)) == (0, "0 damaged files\n")


def test_compact_sets_aside_an_input_whose_pages_are_damaged(tmp_path: Path) -> None:
    lake = lake_of_small_files(tmp_path)
    damaged = parts(tmp_path)[1]
    data = bytearray(damaged.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    data[4 : len(data) - footer] = b"\xff" * (len(data) - footer - 4)
    damaged.write_bytes(bytes(data))
    name = damaged.relative_to(tmp_path).as_posix()
    assert examine(lake) == []  # its footer looks whole

    report = compact(lake, target_mb=1)
    assert report.merged == []
    ((partition, why),) = report.skipped
    assert partition == PARTITION and why.startswith(f"{name}: damaged Parquet file")
    assert not damaged.exists() and not list((tmp_path / PLANS).glob("*.json"))
    assert len(parts(tmp_path)) == 5
    assert len(compact(lake, target_mb=1).merged) == 1  # the next compact merges the rest
