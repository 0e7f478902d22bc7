"""The object fields catalogue (fields.toml): what the listing and profile calls ask, by version
and login, and that every asked field lands in a lake column."""

from __future__ import annotations

from dataclasses import fields

import pytest

from harvester.catalog import ApiVersion, CatalogError, object_fields, parse_fields
from harvester.lake.schema import SCHEMAS
from harvester.models import Dataset, MediaDetails, Profile

NEWER_COUNTS = (
    "reposts_count",
    "saved_count",
    "shares_count",
    "total_like_count",
    "total_comments_count",
    "total_views_count",
)
CLASSIC = (
    "caption",
    "like_count",
    "comments_count",
    "media_url",
    "thumbnail_url",
    "shortcode",
    "username",
    "is_comment_enabled",
    "is_shared_to_feed",
)


@pytest.mark.parametrize("version", ["v17.0", "v22.0", "v25.0"])
def test_facebook_login_asks_every_media_column_in_every_version(version: str) -> None:
    # The newer counts were added for all versions (2026-04-22): no version range.
    asked = object_fields(version)
    assert asked == object_fields(version, "facebook")
    assert asked.media == (*CLASSIC, *NEWER_COUNTS)
    assert asked.media == MediaDetails._fields


def test_instagram_login_has_no_newer_counts() -> None:
    asked = object_fields("v25.0", "instagram")
    assert asked.media == CLASSIC
    assert not set(NEWER_COUNTS) & {*asked.media, *asked.child, *asked.story}


def test_children_and_stories_get_only_what_meta_serves_on_them() -> None:
    asked = object_fields("v25.0")
    assert asked.child == ("media_url", "thumbnail_url", "shortcode")
    assert asked.story == (
        "like_count",
        "comments_count",
        "media_url",
        "thumbnail_url",
        "shortcode",
        "username",
    )


def test_profile_fields_are_the_accounts_columns() -> None:
    asked = object_fields("v25.0").user
    columns = SCHEMAS[Dataset.ACCOUNTS].names
    assert asked == tuple(columns[1 : columns.index("source")])
    assert set(asked) <= {f.name for f in fields(Profile)}
    assert object_fields("v25.0", "instagram").user == asked


def test_every_media_field_is_a_media_column() -> None:
    media = set(SCHEMAS[Dataset.MEDIA].names)
    for login in ("facebook", "instagram"):
        asked = object_fields("v25.0", login)  # type: ignore[arg-type]
        assert {*asked.media, *asked.child, *asked.story} <= media


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[field]]\nname = "x"\non = ["album"]\n', r"field\[0\]\.on: unknown node"),
        ('[[field]]\nname = "x"\n', r"field\[0\]\.on: must not be empty"),
        ('[[field]]\nname = "x"\non = ["media"]\ncolour = 1\n', r"unknown key\(s\) colour"),
        ('[[field]]\nname = "x"\non = ["media"]\nlogin = ["fb"]\n', r"field\[0\]\.login"),
        (
            '[[field]]\nname = "x"\non = ["media"]\n[[field]]\nname = "x"\non = ["media"]\n',
            r"field\[1\]: 'x' on 'media' listed twice",
        ),
        ("[[metric]]\n", r"unknown top-level key\(s\) metric"),
    ],
)
def test_a_malformed_fields_file_names_the_entry(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_fields(text)


def test_version_ranges_select_fields() -> None:
    [entry] = parse_fields('[[field]]\nname = "x"\non = ["media"]\nsince = "v20.0"\n')
    assert entry.accepted_in(ApiVersion.parse("v20.0"))
    assert not entry.accepted_in(ApiVersion.parse("v19.0"))
