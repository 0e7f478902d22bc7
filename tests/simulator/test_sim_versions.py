"""Versions through v27.0: Meta's dates, auto-upgrade of expired versions, unknown versions."""

from __future__ import annotations

from datetime import date

import pytest

from harvester.simulator.versions import BY_MAJOR, MAX_VERSION, served_version

from .helpers import serve

pytestmark = pytest.mark.anyio

# Meta's dates (notes, "What changed through v27.0"): (major, released, available until).
DATES = [
    (18, None, date(2026, 1, 26)),
    (19, None, date(2026, 5, 21)),
    (20, None, date(2026, 9, 24)),
    (21, None, date(2027, 1, 21)),
    (22, date(2025, 1, 21), date(2027, 5, 20)),
    (23, date(2025, 5, 29), date(2027, 10, 8)),
    (24, date(2025, 10, 8), date(2028, 2, 18)),
    (25, date(2026, 2, 18), date(2028, 7, 29)),
    (26, date(2026, 7, 29), None),
    (27, date(2026, 11, 4), None),
]


@pytest.mark.parametrize(("major", "released", "expires"), DATES)
def test_meta_dates(major: int, released: date | None, expires: date | None) -> None:
    version = BY_MAJOR[major]
    if released is not None:
        assert version.released == released
    assert version.expires == expires
    assert MAX_VERSION == 27


@pytest.mark.parametrize(
    ("major", "as_of", "served"),
    [
        (17, None, 17),  # without a clock nothing expires
        (21, date(2026, 12, 1), 21),
        (21, date(2027, 1, 21), 22),  # expired: the oldest available one answers
        (17, date(2026, 12, 1), 21),
        (18, date(2026, 1, 25), 18),
        (18, date(2026, 1, 26), 19),
        (20, date(2026, 9, 24), 21),
        (27, date(2026, 11, 4), 27),
        (27, date(2026, 11, 3), None),  # not released yet: it does not exist
    ],
)
def test_served_version(major: int, as_of: date | None, served: int | None) -> None:
    assert served_version(major, as_of) == served


async def test_expired_version_answers_as_the_oldest_available() -> None:
    """On 2026-12-01 a v17.0 call is served as v21.0: v18+ metrics are there, v22's views not."""
    async with serve(as_of=date(2026, 12, 1)) as c:
        world = c.sim.world
        acc = world.accounts[0]
        photo = next(
            m for m in world.iter_media(acc.id) if m.media_type == "IMAGE" and not m.trouble
        )
        status, _, body = await c.get(
            f"/v17.0/{photo.id}/insights", access_token=acc.token, metric="total_interactions"
        )
        assert status == 200, body
        status, _, body = await c.get(
            f"/v17.0/{photo.id}/insights", access_token=acc.token, metric="views"
        )
        assert status == 400
        assert body["error"]["message"].startswith("(#100) metric[0] must be one of")
        status, _, body = await c.get(
            f"/v22.0/{photo.id}/insights", access_token=acc.token, metric="views"
        )
        assert status == 200, body


@pytest.mark.parametrize(
    ("version", "as_of"),
    [("v99.0", None), ("v28.0", None), ("v27.0", date(2026, 6, 1)), ("v9.0", date(2026, 12, 1))],
)
async def test_unknown_version_is_an_unknown_path(version: str, as_of: date | None) -> None:
    async with serve(as_of=as_of) as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(f"/{version}/{acc.id}/insights", access_token=acc.token)
        assert status == 400
        error = body["error"]
        assert (error["type"], error["code"]) == ("OAuthException", 2500)
        assert error["message"] == f"Unknown path components: /{acc.id}/insights"
