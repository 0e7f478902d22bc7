"""Tokens in every place Meta accepts them, appsecret_proof in both forms, and token failures."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from .helpers import serve

pytestmark = pytest.mark.anyio

SECRET = "sim-app-secret"


def proof(token: str, when: int | None = None) -> str:
    message = token if when is None else f"{token}|{when}"
    return hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("scheme", ["Bearer", "OAuth"])
async def test_authorization_header(scheme: str) -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(
            f"/v25.0/{acc.id}", {"Authorization": f"{scheme} {acc.token}"}
        )
        assert (status, body) == (200, {"id": acc.id})


async def test_token_in_form_body() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        media = next(iter(c.sim.world.iter_media(acc.id)))
        batch = f'[{{"method":"GET","relative_url":"{media.id}?fields=id"}}]'
        status, _, body = await c.post("/v25.0/", {"access_token": acc.token, "batch": batch})
        assert status == 200
        assert body[0]["code"] == 200


async def test_missing_and_unknown_tokens() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.get(f"/v25.0/{acc.id}")
        assert (status, body["error"]["code"]) == (400, 104)
        status, _, body = await c.get(f"/v25.0/{acc.id}", access_token="EAAGnotatoken")
        assert status == 400
        assert body["error"]["code"] == 190
        assert body["error"]["message"] == "Invalid OAuth access token - Cannot parse access token"


async def test_expired_token_and_calls_after_it_are_counted() -> None:
    async with serve() as c:
        expired = c.sim.world.accounts[-1]
        assert expired.token_expired
        for _ in range(3):
            status, _, body = await c.get(f"/v25.0/{expired.id}/media", access_token=expired.token)
            assert status == 400
            assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)
            assert body["error"]["message"].startswith(
                "Error validating access token: Session has expired on "
            )
        token_hash = hashlib.sha256(expired.token.encode()).hexdigest()
        assert c.sim.stats()["calls_after_190"] == {token_hash: 2}


async def test_token_reads_only_its_own_account() -> None:
    async with serve() as c:
        mine, other = c.sim.world.accounts[0], c.sim.world.accounts[1]
        media = next(iter(c.sim.world.iter_media(other.id)))
        for path in (f"/v25.0/{other.id}", f"/v25.0/{media.id}/insights"):
            status, _, body = await c.get(path, access_token=mine.token, metric="reach")
            assert status == 400
            assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)


async def test_user_token_reads_every_account() -> None:
    async with serve() as c:
        for acc in c.sim.world.accounts[:2]:
            status, _, _ = await c.get(f"/v25.0/{acc.id}", access_token=c.sim.world.user_token)
            assert status == 200


async def test_appsecret_proof_forms() -> None:
    async with serve(app_secret=SECRET, require_appsecret_proof=True) as c:
        acc = c.sim.world.accounts[0]
        path = f"/v25.0/{acc.id}"
        status, _, body = await c.get(path, access_token=acc.token)
        assert (status, body["error"]["code"]) == (400, 100)
        status, _, _ = await c.get(path, access_token=acc.token, appsecret_proof=proof(acc.token))
        assert status == 200
        now = int(time.time())
        status, _, _ = await c.get(
            path,
            access_token=acc.token,
            appsecret_proof=proof(acc.token, now),
            appsecret_time=str(now),
        )
        assert status == 200
        stale = now - 3600
        status, _, body = await c.get(
            path,
            access_token=acc.token,
            appsecret_proof=proof(acc.token, stale),
            appsecret_time=str(stale),
        )
        assert (status, body["error"]["code"]) == (400, 100)
        status, _, body = await c.get(path, access_token=acc.token, appsecret_proof="00ff")
        assert (
            body["error"]["message"]
            == "(#100) Invalid appsecret_proof provided in the API argument"
        )


async def test_proof_optional_when_not_required() -> None:
    async with serve(app_secret=SECRET) as c:
        acc = c.sim.world.accounts[0]
        status, _, _ = await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
        assert status == 200
        status, _, _ = await c.get(
            f"/v25.0/{acc.id}", access_token=acc.token, appsecret_proof="bad"
        )
        assert status == 400


async def test_request_log_never_holds_tokens() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        await c.get(f"/v25.0/{acc.id}/media", access_token=acc.token, limit="2")
        [entry] = c.sim.request_log
        assert acc.token not in repr(entry)
        assert entry["token_sha256"] == hashlib.sha256(acc.token.encode()).hexdigest()
        assert entry["params"] == {"limit": "2"}
        assert (entry["edge"], entry["account_id"], entry["status"]) == ("media", acc.id, 200)
