"""Reply parsers: both insights shapes, missing data as null, and totality on hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.graph.errors import MalformedReply
from harvester.graph.replies import parse_insights, parse_media, parse_profile, parse_timestamp
from harvester.models import MediaDetails, Profile, Source

IG = "python-facebook/testdata/instagram/apidata"


def _load(root: Path, rel: str) -> object:
    return json.loads((root / rel).read_text())


def test_values_shape_from_a_real_reply(shared_fixtures: Path) -> None:
    reply = _load(shared_fixtures, f"{IG}/medias/insights.json")
    assert parse_insights(reply, ["impressions", "reach", "saved"]) == [
        ("impressions", "lifetime", None, 8, None),
        ("reach", "lifetime", None, 5, None),
        ("saved", "lifetime", None, 0, None),
    ]


def test_total_value_shape_keeps_breakdowns(shared_fixtures: Path) -> None:
    reply = _load(shared_fixtures, f"{IG}/medias/insights_new.json")
    assert parse_insights(reply, ["profile_activity"]) == [
        ("profile_activity", "lifetime", None, 11, None),
        ("profile_activity", "lifetime", "action_type=bio_link_clicked", 11, None),
    ]
    assert parse_insights(reply, ["profile_activity"], with_totals=False) == [
        ("profile_activity", "lifetime", "action_type=bio_link_clicked", 11, None),
    ]


def test_multi_key_breakdowns_are_labelled_in_key_order(shared_fixtures: Path) -> None:
    reply = _load(shared_fixtures, f"{IG}/users/user_insights_new.json")
    values = parse_insights(reply, ["reach"])
    assert values[0] == ("reach", "day", None, 14516883, None)
    label = "media_product_type=AD,follow_type=NON_FOLLOWER"
    assert ("reach", "day", label, 14357147, None) in values
    assert len(values) == 1 + 14


def test_metrics_missing_from_the_reply_are_null_not_zero() -> None:
    assert parse_insights({"data": []}, ["reach", "saved"]) == [
        ("reach", "lifetime", None, None, None),
        ("saved", "lifetime", None, None, None),
    ]
    reply = {"data": [{"name": "reach", "period": "lifetime", "values": []}]}
    assert parse_insights(reply, ["reach"]) == [("reach", "lifetime", None, None, None)]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "12", True, [1], {"v": 1}, ""])
@pytest.mark.parametrize("shape", ["values", "total_value", "breakdown"])
def test_a_value_that_is_not_a_finite_number_is_malformed(value: object, shape: str) -> None:
    if shape == "values":
        entry: dict[str, Any] = {"name": "reels_skip_rate", "values": [{"value": value}]}
    elif shape == "total_value":
        entry = {"name": "reels_skip_rate", "total_value": {"value": value}}
    else:
        result = {"dimension_values": ["x"], "value": value}
        breakdowns = [{"dimension_keys": ["k"], "results": [result]}]
        entry = {"name": "reels_skip_rate", "total_value": {"value": 1, "breakdowns": breakdowns}}
    with pytest.raises(MalformedReply, match="reels_skip_rate: value is not a finite number"):
        parse_insights({"data": [entry]}, ["reels_skip_rate"])


def _one(name: str, value: object) -> tuple[Any, ...]:
    reply = {"data": [{"name": name, "period": "lifetime", "values": [{"value": value}]}]}
    [found] = parse_insights(reply, [name])
    return found[3:]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        # A fractional metric keeps its digits, whole or not, in value_float.
        ("reels_skip_rate", 56.3, (None, 56.3)),
        ("reels_skip_rate", 41.26, (None, 41.26)),
        ("reels_skip_rate", 0.37, (None, 0.37)),
        ("reels_skip_rate", 0.0, (None, 0.0)),
        ("reels_skip_rate", 56, (None, 56.0)),
        ("reels_skip_rate", None, (None, None)),
        # A count is an exact int64, also when Meta sends it as a whole float.
        ("reach", 0, (0, None)),
        ("reach", 2**63 - 1, (2**63 - 1, None)),
        ("reach", 12.0, (12, None)),
        ("reach", -3, (-3, None)),
        # A count with a fraction is kept, never rounded: value_float.
        ("reach", 12.5, (None, 12.5)),
        ("reach", 0.37, (None, 0.37)),
        ("reach", 1e19, (None, 1e19)),
    ],
)
def test_values_are_exact(name: str, value: object, expected: tuple[Any, ...]) -> None:
    assert _one(name, value) == expected
    total = {"data": [{"name": name, "total_value": {"value": value}}]}
    assert parse_insights(total, [name])[0][3:] == expected


def test_an_integer_beyond_int64_is_malformed_not_a_failed_write() -> None:
    with pytest.raises(MalformedReply, match="reach: value 9223372036854775808 does not fit"):
        _one("reach", 2**63)


def test_media_page_with_children(shared_fixtures: Path) -> None:
    page = _load(shared_fixtures, f"{IG}/users/medias_p2.json")
    assert isinstance(page, dict)
    media = [m for item in page["data"] for m in parse_media(item, "17841406338772941")]
    assert [(m.id, m.media_type, m.parent_id) for m in media] == [
        ("17896129349106152", "CAROUSEL_ALBUM", None),
        ("17889214265226770", "IMAGE", "17896129349106152"),
        ("17886719108286032", "IMAGE", "17896129349106152"),
        ("17904922598025487", "VIDEO", "17896129349106152"),
        ("17893085207160254", "IMAGE", None),
    ]
    assert media[0].timestamp == datetime(2021, 7, 26, 10, 45, 20, tzinfo=UTC)
    assert media[0].permalink == "https://www.instagram.com/p/CRyZpmrjYC4/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-04-05T07:56:32+0000", datetime(2019, 4, 5, 7, 56, 32, tzinfo=UTC)),
        ("2019-04-05T09:56:32+0200", datetime(2019, 4, 5, 7, 56, 32, tzinfo=UTC)),
        ("2019-04-05T07:56:32Z", datetime(2019, 4, 5, 7, 56, 32, tzinfo=UTC)),
        (None, None),
    ],
)
def test_timestamps(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
insight_entries = st.fixed_dictionaries(
    {"name": st.sampled_from(["reach", "saved", "views"])},
    optional={
        "period": st.sampled_from(["lifetime", "day"]) | json_values,
        "values": json_values,
        "total_value": json_values,
    },
)


@given(st.one_of(json_values, st.fixed_dictionaries({"data": st.lists(insight_entries)})))
def test_parse_insights_is_total(reply: object) -> None:
    try:
        values = parse_insights(reply, ["reach"])
    except MalformedReply:
        return
    assert all(v[3] is None or type(v[3]) is int for v in values)
    assert all(v[4] is None or type(v[4]) is float for v in values)
    assert all(v[3] is None or v[4] is None for v in values)
    assert any(v[0] == "reach" for v in values)


@given(json_values)
def test_parse_media_is_total(item: object) -> None:
    try:
        media = list(parse_media(item, "1"))
    except MalformedReply:
        return
    assert media and all(m.account_id == "1" for m in media)


numbers = st.integers(-(2**62), 2**62) | st.floats(-1e15, 1e15) | st.none()
breakdown_lists = st.lists(
    st.fixed_dictionaries(
        {
            "dimension_keys": st.just(["action_type"]),
            "results": st.lists(
                st.fixed_dictionaries(
                    {"dimension_values": st.lists(st.text(max_size=5), min_size=1, max_size=1)},
                    optional={"value": numbers},
                ),
                max_size=3,
            ),
        }
    ),
    max_size=2,
)
good_entries = st.fixed_dictionaries(
    {"name": st.sampled_from(["reach", "saved", "views", "profile_activity", "reels_skip_rate"])},
    optional={"period": st.sampled_from(["lifetime", "day"]), "title": st.text(max_size=5)},
).flatmap(
    lambda entry: st.one_of(
        st.builds(
            lambda vs: {**entry, "values": vs},
            st.lists(st.fixed_dictionaries({}, optional={"value": numbers}), max_size=2),
        ),
        st.builds(
            lambda v, b: {**entry, "total_value": {"value": v, **({"breakdowns": b} if b else {})}},
            numbers,
            breakdown_lists,
        ),
    )
)


def _expected(entries: list[dict[str, Any]], requested: list[str], totals: bool) -> list[Any]:
    """The reading of well-formed entries, written plainly: the parser's fast path must agree."""

    def num(value: Any, name: str) -> tuple[int | None, float | None]:
        if value is None:
            return None, None
        if name == "reels_skip_rate":  # fractional: value_float, whole or not
            return None, float(value)
        if float(value).is_integer():
            return int(value), None
        return None, value

    out: list[Any] = []
    for entry in entries:
        name, period = entry["name"], entry.get("period")
        if "total_value" in entry:
            total = entry["total_value"]
            if totals:
                out.append((name, period, None, *num(total.get("value"), name)))
            for breakdown in total.get("breakdowns", []):
                for result in breakdown["results"]:
                    label = f"action_type={result['dimension_values'][0]}"
                    out.append((name, period, label, *num(result.get("value"), name)))
        elif totals:
            first = entry["values"][0].get("value") if entry["values"] else None
            out.append((name, period, None, *num(first, name)))
    seen = {entry["name"] for entry in entries}
    return out + [(n, "lifetime", None, None, None) for n in requested if totals and n not in seen]


@given(st.lists(good_entries, max_size=6), st.booleans())
def test_parse_insights_reads_well_formed_entries_exactly(
    entries: list[dict[str, Any]], totals: bool
) -> None:
    requested = ["reach", "likes"]
    got = parse_insights({"data": entries}, requested, with_totals=totals)
    assert got == _expected(entries, requested, totals)


@pytest.mark.parametrize(
    "breakdowns", [5, "abc", {"a": 1}, [5], [{"dimension_keys": "action_type", "results": []}]]
)
def test_a_malformed_breakdowns_value_is_named(breakdowns: object) -> None:
    entry = {"name": "profile_activity", "total_value": {"value": 3, "breakdowns": breakdowns}}
    with pytest.raises(MalformedReply, match="profile_activity: breakdown"):
        parse_insights({"data": [entry]}, ["profile_activity"])


def test_media_details_from_a_real_listing(shared_fixtures: Path) -> None:
    reply = _load(shared_fixtures, f"{IG}/medias/media_default.json")
    assert isinstance(reply, dict)
    album, *children = parse_media(reply, "1784")
    assert album.details == MediaDetails(
        caption="ALBUM", comments_count=0, like_count=1, media_url=reply.get("media_url")
    )
    assert children and all(c.details is not None for c in children)
    first = children[0].details
    assert first is not None and first.shortcode == "CRyZpjhDO_k"
    assert first.media_url is not None and first.media_url.startswith("https://scontent")
    assert (first.caption, first.like_count, first.comments_count) == (None, None, None)


def test_media_details_are_none_where_the_reply_omits_them() -> None:
    # A hidden like count, a withheld media URL: the field is absent, never 0 or "".
    [media] = parse_media(
        {
            "id": "1",
            "media_type": "VIDEO",
            "media_product_type": "REELS",
            "comments_count": 4,
            "thumbnail_url": "https://t",
            "is_shared_to_feed": False,
            "is_comment_enabled": True,
            "total_views_count": 2**40,
        },
        "1784",
    )
    assert media.details == MediaDetails(
        comments_count=4,
        thumbnail_url="https://t",
        is_shared_to_feed=False,
        is_comment_enabled=True,
        total_views_count=2**40,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("like_count", "12"),
        ("like_count", True),
        ("comments_count", 1.5),
        ("saved_count", 2**63),
        ("caption", 7),
        ("is_comment_enabled", 1),
        ("is_shared_to_feed", "true"),
    ],
)
def test_a_detail_of_the_wrong_type_is_a_malformed_reply(field: str, value: object) -> None:
    with pytest.raises(MalformedReply, match=field):
        list(parse_media({"id": "1", field: value}, "1784"))


def test_profile_from_a_real_reply(shared_fixtures: Path) -> None:
    reply = _load(shared_fixtures, f"{IG}/users/user_fields.json")
    assert isinstance(reply, dict)
    profile = parse_profile(reply, reply["id"])
    assert profile == Profile(
        account_id="17841407673135339",
        source=Source.OWNED,
        username="facebookfordevelopers",
        name="Facebook for Developers",
        biography=reply["biography"],
        website=None,  # the recording has none: absent, so None
        followers_count=64363,
        follows_count=None,
        media_count=427,
        profile_picture_url=reply["profile_picture_url"],
    )


@pytest.mark.parametrize(
    "reply",
    [[], {"id": "other"}, {"followers_count": "12"}, {"username": 3}, {"media_count": 1.0}],
)
def test_a_malformed_profile_is_refused(reply: object) -> None:
    with pytest.raises(MalformedReply):
        parse_profile(reply, "1784")
