"""Test rows of `media` as the sink takes them: the routing columns, no details, owned."""

from __future__ import annotations

from typing import Any

from harvester.models import MediaDetails, Source

# caption .. total_views_count of a media the listing said nothing more of, then `source`.
NO_DETAILS: tuple[Any, ...] = (None,) * len(MediaDetails._fields) + (Source.OWNED.value,)


def media_row(*head: Any, fetched_at: Any, run_id: str) -> tuple[Any, ...]:
    """`head` = account_id, media_id, parent_id, media_type, media_product_type, media_timestamp,
    permalink; the details empty."""
    assert len(head) == 7, head
    return (*head, *NO_DETAILS, fetched_at, run_id)
