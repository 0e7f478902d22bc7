"""The version policy: a pure verdict on a configured API version at an injected date."""

from __future__ import annotations

from datetime import date

import pytest

from harvester.catalog import ApiVersion, parse_catalog, version_status

EXPIRING = "v21.0 expires within 90 days (on 2027-01-21)"
EXPIRED_21 = "v21.0 expired on 2027-01-21 (Meta serves the oldest live version, v22.0, instead)"


@pytest.mark.parametrize(
    ("version", "today", "level", "message"),
    [
        ("v25.0", date(2026, 12, 1), "ok", "ok"),
        ("v27.0", date(2030, 1, 1), "ok", "ok"),  # no announced expiry
        ("v21.0", date(2026, 10, 22), "ok", "ok"),  # 91 days before
        ("v21.0", date(2026, 10, 23), "expiring", EXPIRING),  # 90 days before
        ("v21.0", date(2026, 12, 1), "expiring", EXPIRING),
        ("v21.0", date(2027, 1, 20), "expiring", EXPIRING),
        ("v21.0", date(2027, 1, 21), "expired", EXPIRED_21),
        (
            "v21.0",
            date(2028, 3, 1),
            "expired",
            "v21.0 expired on 2027-01-21 (Meta serves the oldest live version, v25.0, instead)",
        ),
        (
            "v18.0",
            date(2026, 12, 1),
            "expired",
            "v18.0 expired on 2026-01-26 (Meta serves the oldest live version, v21.0, instead)",
        ),
        (
            "v17.0",
            date(2026, 12, 1),
            "expired",
            "v17.0 expired before 2026-01-26 (Meta serves the oldest live version, v21.0, instead)",
        ),
        (
            "v30.0",
            date(2026, 12, 1),
            "unknown",
            "v30.0 is not a version the catalogue knows (v18.0, v19.0, v20.0, v21.0, v22.0, "
            "v23.0, v24.0, v25.0, v26.0, v27.0)",
        ),
    ],
)
def test_version_status(version: str, today: date, level: str, message: str) -> None:
    status = version_status(version, today)
    assert (status.level, status.message) == (level, message)
    assert status.ok is (level == "ok")
    assert version_status(ApiVersion.parse(version), today) == status


def test_version_status_reads_the_given_catalogue() -> None:
    catalog = parse_catalog(
        '[[version]]\nname = "v1.0"\nreleased = 2020-01-01\nexpires = 2021-01-01\n'
        '[[version]]\nname = "v2.0"\nreleased = 2020-06-01\n'
    )
    assert version_status("v1.0", date(2020, 12, 1), catalog).level == "expiring"
    assert version_status("v1.0", date(2021, 1, 1), catalog).message == (
        "v1.0 expired on 2021-01-01 (Meta serves the oldest live version, v2.0, instead)"
    )


def test_a_bad_version_string_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"'25\.0'"):
        version_status("25.0", date(2026, 12, 1))
