"""Meta's side of the `story_insights` webhook: payloads for the world's stories, signed and POSTed.

Meta sends one notification when a story expires, to the app's callback URL, with the body signed
as `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body keyed by the app secret>`. Payloads
follow the documented sample (fields impressions, reach, taps_forward, taps_back, exits, replies);
values come from the world, so a test can check the lake against `World.media_metric_value`.
Like the rest of the simulator this never imports the harvester: signing is written out here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import orjson

from harvester.simulator.entities import SimMedia
from harvester.simulator.world import STORY_LIFETIME_SECONDS, World

# The fields of Meta's documented story_insights sample payload, in its order.
STORY_FIELDS = ("impressions", "reach", "taps_forward", "taps_back", "exits", "replies")
SIGNATURE_HEADER = "X-Hub-Signature-256"


def expired_stories(world: World) -> list[SimMedia]:
    """Stories Meta would report on expiry: every account's, except those under five viewers."""
    return [
        story
        for account in world.accounts
        for story in world.stories(account.id)
        if story.trouble != "few_viewers"
    ]


def story_values(world: World, story: SimMedia) -> dict[str, int]:
    return {field: int(world.value_of(story, field)) for field in STORY_FIELDS}


def story_entry(world: World, story: SimMedia) -> dict[str, Any]:
    """One `entry` item: the story's account, its expiry time and one story_insights change."""
    expired = story.timestamp + timedelta(seconds=STORY_LIFETIME_SECONDS)
    return {
        "id": story.account_id,
        "time": int(expired.timestamp()),
        "changes": [
            {
                "field": "story_insights",
                "value": {"media_id": story.id, **story_values(world, story)},
            }
        ],
    }


def payload(world: World, stories: Sequence[SimMedia]) -> dict[str, Any]:
    """A notification carrying one entry per story (Meta batches entries the same way)."""
    return {"object": "instagram", "entry": [story_entry(world, s) for s in stories]}


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POSTs notifications to one callback URL, signed with the app secret unless told otherwise."""

    def __init__(self, session: aiohttp.ClientSession, url: str, app_secret: str) -> None:
        self._session = session
        self.url = url
        self._secret = app_secret

    async def post(self, body: bytes, *, signature: str | None = "") -> int:
        """POST raw bytes and return the status. `signature`: "" signs correctly, None sends no
        header, any other text is sent as the header as it is (a forgery)."""
        headers = {"Content-Type": "application/json"}
        if signature == "":
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        elif signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with self._session.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def send(self, world: World, stories: Sequence[SimMedia]) -> int:
        return await self.post(orjson.dumps(payload(world, stories)))

    async def handshake(self, verify_token: str, challenge: str) -> tuple[int, str]:
        """Meta's subscription check: the endpoint must echo `hub.challenge`."""
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": verify_token,
            "hub.challenge": challenge,
        }
        async with self._session.get(self.url, params=params) as response:
            return response.status, await response.text()
