"""Graph API versions the simulator knows: release and expiry dates, and which one serves a call.

Dates from v22 on and every expiry from v18 on are Meta's (../shared/graph-api-notes.md, "What
changed through v27.0"); older release dates only order the versions, and their expiries follow
Meta's policy (two years after the next release) [guess]. Under a clock (`as_of`) a call to an
expired version is served as the oldest version still available that day, as Meta auto-upgrades
it, and a version not yet released that day does not exist. Without a clock nothing expires.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple


class Version(NamedTuple):
    major: int
    released: date
    expires: date | None  # None: no end announced


VERSIONS: tuple[Version, ...] = (
    Version(10, date(2021, 2, 23), date(2023, 6, 8)),
    Version(11, date(2021, 6, 8), date(2023, 9, 14)),
    Version(12, date(2021, 9, 14), date(2024, 2, 8)),
    Version(13, date(2022, 2, 8), date(2024, 5, 28)),
    Version(14, date(2022, 5, 28), date(2024, 9, 17)),
    Version(15, date(2022, 9, 17), date(2025, 2, 2)),
    Version(16, date(2023, 2, 2), date(2025, 5, 23)),
    Version(17, date(2023, 5, 23), date(2025, 9, 12)),
    Version(18, date(2023, 9, 12), date(2026, 1, 26)),
    Version(19, date(2024, 1, 23), date(2026, 5, 21)),
    Version(20, date(2024, 5, 21), date(2026, 9, 24)),
    Version(21, date(2024, 10, 2), date(2027, 1, 21)),
    Version(22, date(2025, 1, 21), date(2027, 5, 20)),
    Version(23, date(2025, 5, 29), date(2027, 10, 8)),
    Version(24, date(2025, 10, 8), date(2028, 2, 18)),
    Version(25, date(2026, 2, 18), date(2028, 7, 29)),
    Version(26, date(2026, 7, 29), None),
    Version(27, date(2026, 11, 4), None),
)
BY_MAJOR = {v.major: v for v in VERSIONS}
MIN_VERSION = VERSIONS[0].major
MAX_VERSION = VERSIONS[-1].major


def parse_version(text: str) -> int | None:
    """The major number of "v27.0", or None when it is not a version the simulator knows."""
    if len(text) < 4 or text[0] != "v" or not text.endswith(".0"):
        return None
    major = text[1:-2]
    if not major.isdigit():
        return None
    n = int(major)
    return n if n in BY_MAJOR else None


def available(major: int, as_of: date | None) -> bool:
    """Whether Meta serves `major` as itself on `as_of` (released, not expired)."""
    v = BY_MAJOR[major]
    if as_of is None:
        return True
    return v.released <= as_of and (v.expires is None or as_of < v.expires)


def served_version(major: int, as_of: date | None) -> int | None:
    """The version that answers a call made to `major`: itself, or the oldest available one when
    `major` has expired; None when `major` was not released yet on `as_of` (it does not exist)."""
    if as_of is None or available(major, as_of):
        return major
    if BY_MAJOR[major].released > as_of:
        return None
    return next((v.major for v in VERSIONS if available(v.major, as_of)), None)
