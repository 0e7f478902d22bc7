"""The simulated world's records: an account and a media object, as the world derives them.

Apart from `world` so that the value functions (`values`) can take them without importing the
world that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

Trouble = str  # None | "pre_conversion" | "deleted" | "few_viewers" | "no_data"


@dataclass(frozen=True, slots=True)
class SimAccount:
    index: int
    id: str
    token: str
    page_id: str
    username: str
    name: str
    followers_count: int
    follows_count: int
    token_expired: bool
    converted_at: datetime
    login: str = "facebook"  # "instagram": reached through the Instagram host only


@dataclass(frozen=True, slots=True)
class SimMedia:
    id: str
    account_id: str
    media_type: str
    media_product_type: str
    timestamp: datetime
    permalink: str
    parent_id: str | None
    children_ids: tuple[str, ...]
    trouble: Trouble | None
    account_index: int
    index: int
    slot: int
    shortcode: str
    # mix(seed, account_index, index, slot): the prefix of every draw of this media, paid once
    # (a value is then one splitmix round: `ids.unit_at(head, key)`).
    head: int

    @property
    def is_child(self) -> bool:
        return self.parent_id is not None

    @property
    def is_story(self) -> bool:
        return self.media_product_type == "STORY"
