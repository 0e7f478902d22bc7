"""Token introspection: `GET /debug_token` and `GET /me/permissions`, with Meta's reply shapes.

The world plants token troubles a preflight must find (see `World`): the expired token (190/463 on
every call), a token without `instagram_manage_insights`, and one that expires in three days.
Other tokens are long-lived user tokens (60 days) with every permission the harvester needs; the
page token of the page without Instagram never expires (`expires_at` 0, as Meta reports it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harvester.simulator import ids
from harvester.simulator.auth import Authenticator, Principal
from harvester.simulator.entities import SimAccount
from harvester.simulator.world import World

APP_ID = "1000000000000001"
APP_NAME = "Simulated Harvester App"
LONG_LIVED = timedelta(days=60)
DATA_ACCESS = timedelta(days=90)
EXPIRING_SOON = timedelta(days=3)
GRANTED = (
    "instagram_basic",
    "instagram_manage_insights",
    "pages_read_engagement",
    "pages_show_list",
    "business_management",
    "public_profile",
)
WITHHELD = "instagram_manage_insights"  # what the under-permissioned token lacks


def expires_at(world: World, who: Principal) -> int:
    """Unix time the token expires; 0 for a token that never does."""
    if who.kind == "page":
        return 0
    now = world.now
    if who.kind == "account" and who.account is not None:
        acc = world.accounts[who.account]
        if acc.token_expired:
            # The moment the 190/463 message names ("Session has expired on ...").
            return int(now.replace(hour=0, minute=0, second=0).timestamp())
        if acc is world.expiring_token_account:
            return int((now + EXPIRING_SOON).timestamp())
        # Long-lived tokens renewed at different times: 40..59 days left.
        return int((now + LONG_LIVED - timedelta(days=1 + acc.index % 20)).timestamp())
    return int((now + LONG_LIVED).timestamp())


def scopes(world: World, who: Principal) -> list[str]:
    lacking = world.permission_missing_account
    if who.kind == "account" and who.account is not None and world.accounts[who.account] is lacking:
        return [s for s in GRANTED if s != WITHHELD]
    return list(GRANTED)


def _targets(world: World, who: Principal) -> list[SimAccount]:
    if who.kind == "account" and who.account is not None:
        return [world.accounts[who.account]]
    return list(world.accounts) if who.kind == "user" else []


def debug_token(world: World, auth: Authenticator, input_token: str | None) -> dict[str, Any]:
    """`{"data": {...}}` for `input_token`, shaped like Meta's (fixtures base/token_info.json)."""
    who = auth.principal(input_token)
    if who is None:
        return {
            "data": {
                "error": {
                    "code": 190,
                    "message": "Invalid OAuth access token - Cannot parse access token",
                },
                "is_valid": False,
                "scopes": [],
            }
        }
    granted = scopes(world, who)
    targets = [acc.id for acc in _targets(world, who)]
    data: dict[str, Any] = {
        "app_id": APP_ID,
        "type": "PAGE" if who.kind == "page" else "USER",
        "application": APP_NAME,
        "data_access_expires_at": int((world.now + DATA_ACCESS).timestamp()),
        "expires_at": expires_at(world, who),
        "is_valid": not who.expired,
        "scopes": granted,
        "granular_scopes": [
            {"scope": s, "target_ids": targets} if s.startswith("instagram_") else {"scope": s}
            for s in granted
        ],
        "user_id": ids.USER_ID,
    }
    if who.expired:
        data["error"] = {
            "code": 190,
            "message": "Error validating access token: The session has been invalidated or has "
            "expired.",
            "subcode": 463,
        }
    return {"data": data}


def permissions(world: World, who: Principal) -> dict[str, Any]:
    """`/me/permissions`: every permission ever asked, granted or declined."""
    granted = set(scopes(world, who))
    return {
        "data": [
            {"permission": s, "status": "granted" if s in granted else "declined"} for s in GRANTED
        ]
    }
