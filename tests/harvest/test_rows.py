"""harvest/rows.py: the one module that builds dataset rows, and the Stage names of error rows."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from harvester.graph.errors import MalformedReply, MetricUnsupported, TokenInvalid
from harvester.graph.replies import parse_insights
from harvester.harvest.report import RunCounters
from harvester.harvest.rows import RunRows, Stage
from harvester.lake.schema import SCHEMAS
from harvester.models import Account, Dataset, Media, Rows, Secret

PACKAGE = Path(__file__).resolve().parents[2] / "harvester"
ACCOUNT = Account("17841400000000001", "TOKEN", Secret("t"))
WHEN = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
MEDIA = Media(ACCOUNT.id, "1801", "IMAGE", "FEED", WHEN, "https://ig/p/1")
CHILD = Media(ACCOUNT.id, "1802", "IMAGE", "FEED", WHEN, None, parent_id="1801")


def _table(block: Rows) -> pa.Table:
    """The block as the sink sees it: each row is head + row + tail, in schema order."""
    schema = SCHEMAS[block.dataset]
    rows = [(*block.head, *row, *block.tail) for row in block.rows]
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)


def test_each_dataset_row_fits_its_schema_and_is_counted() -> None:
    counters = RunCounters()
    rows = RunRows(run_id="r1", api_version="v24.0", counters=counters)
    media = _table(rows.media([MEDIA, CHILD])).to_pylist()
    assert [(m["media_id"], m["parent_id"], m["permalink"]) for m in media] == [
        ("1801", None, "https://ig/p/1"),
        ("1802", "1801", None),
    ]
    assert {m["run_id"] for m in media} == {"r1"}

    values = [
        ("reach", "lifetime", None, 7, None),
        ("reels_skip_rate", "lifetime", None, None, 0.37),
    ]
    got = _table(rows.media_insights(ACCOUNT, MEDIA, values)).to_pylist()
    assert [
        (g["media_id"], g["metric"], g["value"], g["value_float"], g["api_version"]) for g in got
    ] == [
        ("1801", "reach", 7, None, "v24.0"),
        ("1801", "reels_skip_rate", None, 0.37, "v24.0"),
    ]
    account = rows.account_insights(ACCOUNT, [("reach", "day", WHEN, None, None, 3, None)])
    assert _table(account).to_pylist()[0]["value"] == 3
    story = rows.story_insights(ACCOUNT.id, "1803", [("reach", 4), ("replies", None), ("x", 2.5)])
    assert [(r[1], r[3], r[5], r[8], r[9]) for r in story] == [
        ("1803", "STORY", "reach", 4, None),
        ("1803", "STORY", "replies", None, None),
        ("1803", "STORY", "x", None, 2.5),
    ]
    assert counters.insight_rows == 6


def test_error_rows_name_their_stage_and_the_dropped_metric() -> None:
    counters = RunCounters()
    rows = RunRows(run_id="r1", api_version="v24.0", counters=counters)
    refused = MetricUnsupported("(#100) bad metric", status=400, code=100, metric="impressions")
    block = rows.error_block(ACCOUNT.id, "1801", Stage.METRIC_UNSUPPORTED, refused)
    error = _table(block).to_pylist()[0]
    assert (error["stage"], error["error_code"], error["message"]) == (
        "metric_unsupported",
        100,
        "metric impressions dropped: (#100) bad metric",
    )
    dead = rows.error(ACCOUNT.id, ACCOUNT.id, Stage.LISTING, TokenInvalid("expired", code=190))
    assert (dead[2], dead[4]) == ("listing", 190)
    assert counters.error_rows == 2
    assert block.dataset is Dataset.ERRORS


# Other vocabularies that share words with stage names: config keys ([harvest] flags, the
# [discovery] table), dataset names, a job's flags (named after the config keys) and the
# checkpoint's unit kinds ("discovery").
_SHARED_WORDS = {
    "harvester/config.py": {"discovery", "media_insights", "account_insights", "competitors"},
    "harvester/models.py": {"media_insights", "account_insights"},
    "harvester/lake/jobs.py": {"media_insights", "account_insights", "competitors"},
    "harvester/lake/settle.py": {"account_insights"},
    "harvester/lake/checkpoint.py": {"discovery"},
    "harvester/harvest/pipeline.py": {"discovery"},
}


def test_no_stage_name_is_a_literal_outside_its_enum() -> None:
    stages = {s.value for s in Stage}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel == "harvester/harvest/rows.py" or rel.startswith("harvester/simulator/"):
            continue
        allowed = _SHARED_WORDS.get(rel, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in stages - allowed:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert found == []


@pytest.mark.parametrize("value", ["12", True, [0.37], None])
def test_a_value_that_is_not_a_number_is_an_error_row_naming_the_metric(value: object) -> None:
    """Never a crash, never a silent 0: the parser's complaint becomes the media's error row."""
    reply = {"data": [{"name": "reels_skip_rate", "values": [{"value": value}]}]}
    rows = RunRows(run_id="r1", api_version="v27.0")
    if value is None:  # null is "no data", not an error
        assert parse_insights(reply, ["reels_skip_rate"]) == [
            ("reels_skip_rate", None, None, None, None)
        ]
        return
    with pytest.raises(MalformedReply) as caught:
        parse_insights(reply, ["reels_skip_rate"])
    row = _table(rows.error_block(ACCOUNT.id, "1801", Stage.MEDIA_INSIGHTS, caught.value))
    [error] = row.to_pylist()
    assert (error["object_id"], error["stage"]) == ("1801", "media_insights")
    assert error["message"] == f"reels_skip_rate: value is not a finite number: {value!r}"
