"""The simulator's Instagram host: tokens on their own host only, `/me`, the refresh, the metric
set of Instagram Login media, and batch POSTs refused or taken."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.helpers import BASE, Client, serve

IG = {"instagram_accounts": 1, "troubles": False}
CANNOT_PARSE = {
    "message": "Invalid OAuth access token - Cannot parse access token",
    "type": "OAuthException",
    "code": 190,
}
UNSUPPORTED_GET = {
    "message": "Unsupported request - method type: get",
    "type": "IGApiException",
    "code": 100,
}


def error(body: Any) -> dict[str, Any]:
    return {k: v for k, v in body["error"].items() if k != "fbtrace_id"}


@pytest.mark.anyio
async def test_a_token_on_the_other_host_cannot_be_parsed() -> None:
    async with serve(BASE, **IG) as client:
        ig, fb = client.sim.world.accounts[0], client.sim.world.accounts[1]
        ig_url = client.sim.instagram_base_url
        cases = [
            (f"/v25.0/{ig.id}", ig.token),  # Instagram token on the Facebook host
            (f"{ig_url}/v25.0/{fb.id}", fb.token),  # Facebook token on the Instagram host
            (f"{ig_url}/v25.0/me", client.sim.world.user_token),
        ]
        for path, token in cases:
            status, _, body = await client.get(path, access_token=token, fields="id")
            assert (status, error(body)) == (400, CANNOT_PARSE)
        # On its own host each works; an account of the other login does not exist there.
        status, _, body = await client.get(f"{ig_url}/v25.0/{ig.id}", access_token=ig.token)
        assert (status, body["id"]) == (200, ig.id)
        status, _, body = await client.get(f"/v25.0/{ig.id}", access_token=fb.token)
        assert (status, error(body)["code"]) == (400, 100)
        assert {e["host"] for e in client.sim.request_log} == {"facebook", "instagram"}


@pytest.mark.anyio
async def test_me_names_the_tokens_account() -> None:
    async with serve(BASE, **IG) as client:
        ig = client.sim.world.accounts[0]
        url = f"{client.sim.instagram_base_url}/v25.0/me"
        status, _, body = await client.get(url, access_token=ig.token, fields="user_id,username")
        assert (status, body) == (200, {"user_id": ig.id, "username": "sim_account_0"})
        status, _, body = await client.get(url + "/permissions", access_token=ig.token)
        assert (status, error(body)) == (400, UNSUPPORTED_GET)


@pytest.mark.anyio
@pytest.mark.parametrize(("age_hours", "ok"), [(48.0, True), (23.5, False)])
async def test_refresh_needs_a_token_at_least_a_day_old(age_hours: float, ok: bool) -> None:
    async with serve(BASE, instagram_token_age_hours=age_hours, **IG) as client:
        ig = client.sim.world.accounts[0]
        url = f"{client.sim.instagram_base_url}/refresh_access_token"
        status, _, body = await client.get(
            url, access_token=ig.token, grant_type="ig_refresh_token"
        )
        if not ok:
            assert (status, error(body)) == (400, UNSUPPORTED_GET)
            return
        assert status == 200 and body["token_type"] == "bearer"
        assert body["expires_in"] == 60 * 86_400
        new = body["access_token"]
        assert new.startswith("IGAA") and new != ig.token
        # The new token reads the account; it is too young to refresh again.
        status, _, node = await client.get(
            f"{client.sim.instagram_base_url}/v25.0/{ig.id}", access_token=new
        )
        assert (status, node["id"]) == (200, ig.id)
        status, _, body = await client.get(url, access_token=new, grant_type="ig_refresh_token")
        assert (status, error(body)) == (400, UNSUPPORTED_GET)


async def _insights(client: Client, base: str, account: int, metric: str) -> tuple[int, Any]:
    world = client.sim.world
    acc = world.accounts[account]
    media = next(m for m in world.iter_media(acc.id) if m.media_product_type == "REELS")
    status, _, body = await client.get(
        f"{base}/v25.0/{media.id}/insights", access_token=acc.token, metric=metric
    )
    return status, body


@pytest.mark.anyio
async def test_facebook_login_only_metrics_are_refused_for_instagram_login_media() -> None:
    async with serve(BASE, as_of=None, **IG) as client:
        ig_base = client.sim.instagram_base_url
        status, body = await _insights(client, ig_base, 0, "total_likes")
        message = error(body)["message"]
        assert status == 400 and error(body)["code"] == 100
        assert message.startswith("(#100) metric[0] must be one of the following values: ")
        assert "total_likes" not in message and "views" in message
        status, body = await _insights(client, client.sim.base_url, 1, "total_likes")
        assert status == 200 and body["data"][0]["name"] == "total_likes"
        status, body = await _insights(client, ig_base, 0, "views")
        assert status == 200 and body["data"][0]["name"] == "views"


@pytest.mark.anyio
@pytest.mark.parametrize("batch", [False, True])
async def test_batch_posts_on_the_instagram_host_are_an_option(batch: bool) -> None:
    async with serve(BASE, instagram_batch=batch, **IG) as client:
        ig = client.sim.world.accounts[0]
        form = {"access_token": ig.token, "batch": f'[{{"method":"GET","relative_url":"{ig.id}"}}]'}
        url = f"{client.sim.instagram_base_url}/v25.0/"
        async with client.session.post(url, data=form) as resp:
            status, body = resp.status, await resp.json()
        if batch:
            assert status == 200 and body[0]["code"] == 200
        else:
            expected = {**UNSUPPORTED_GET, "message": "Unsupported request - method type: post"}
            assert (status, error(body)) == (400, expected)
