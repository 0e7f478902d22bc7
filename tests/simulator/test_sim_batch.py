"""The batch POST: order, per-op errors and tokens, the 50-op cap, headers and null entries."""

from __future__ import annotations

import orjson
import pytest

from harvester.simulator import FaultSettings

from .helpers import serve

pytestmark = pytest.mark.anyio


def ops(urls: list[str]) -> str:
    return orjson.dumps([{"method": "GET", "relative_url": u} for u in urls]).decode()


async def test_replies_in_order_with_per_op_errors() -> None:
    async with serve() as c:
        world = c.sim.world
        acc = world.accounts[0]
        media = list(world.iter_media(acc.id))[:6]
        urls = [f"{m.id}/insights?metric=reach" for m in media]
        status, _, body = await c.post("/v25.0/", {"access_token": acc.token, "batch": ops(urls)})
        assert status == 200
        assert len(body) == 6
        for m, entry in zip(media, body, strict=True):
            inner = orjson.loads(entry["body"])
            if m.trouble in ("deleted", "pre_conversion"):
                assert entry["code"] == 400
                assert inner["error"]["code"] == 100
            elif m.trouble == "no_data":
                assert inner == {"data": []}
            else:
                assert entry["code"] == 200
                assert inner["data"][0]["id"] == f"{m.id}/insights/reach/lifetime"
            names = [h["name"] for h in entry["headers"]]
            assert "X-Business-Use-Case-Usage" in names


async def test_ops_are_logged_and_counted_each() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        media = list(c.sim.world.iter_media(acc.id))[:3]
        urls = [f"v21.0/{m.id}?fields=id,media_type" for m in media]
        await c.post("/v25.0/", {"access_token": acc.token, "batch": ops(urls)})
        op_entries = [e for e in c.sim.request_log if e["batch"]]
        assert [e["path"] for e in op_entries] == [f"/v21.0/{m.id}" for m in media]
        assert all(e["params"] == {"fields": "id,media_type"} for e in op_entries)
        stats = c.sim.stats()
        assert stats["by_edge"]["batch_ops"] == 3
        assert stats["by_edge"]["batch"] == 1


async def test_op_token_overrides_fallback() -> None:
    async with serve() as c:
        a, b = c.sim.world.accounts[0], c.sim.world.accounts[1]
        urls = [
            f"{a.id}?fields=id",
            f"{b.id}?fields=id&access_token={b.token}",
            f"{b.id}?fields=id",
        ]
        _, _, body = await c.post("/v25.0/", {"access_token": a.token, "batch": ops(urls)})
        assert [e["code"] for e in body] == [200, 200, 400]


async def test_include_headers_false() -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        batch = ops([f"{acc.id}?fields=id"])
        _, _, body = await c.post(
            "/v25.0/", {"access_token": acc.token, "batch": batch, "include_headers": "false"}
        )
        assert set(body[0]) == {"code", "body"}


@pytest.mark.parametrize("count", [50, 51])
async def test_at_most_50_ops(count: int) -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        batch = ops([f"{acc.id}?fields=id"] * count)
        status, _, body = await c.post("/v25.0/", {"access_token": acc.token, "batch": batch})
        if count == 50:
            assert status == 200 and len(body) == 50
        else:
            assert status == 400
            assert body["error"]["message"] == (
                "(#100) Too many requests in batch message. Maximum batch size is 50"
            )


@pytest.mark.parametrize("raw", ["", "not json", "{}", "[1]", '[{"method":"GET"}]', "[]"])
async def test_malformed_batch(raw: str) -> None:
    async with serve() as c:
        acc = c.sim.world.accounts[0]
        status, _, body = await c.post("/v25.0/", {"access_token": acc.token, "batch": raw})
        assert status == 400
        assert body["error"]["code"] == 100


async def test_null_entries_are_reproducible() -> None:
    faults = FaultSettings(batch_null=0.5, seed=3)
    results = []
    for _ in range(2):
        async with serve(faults=faults) as c:
            acc = c.sim.world.accounts[0]
            urls = [f"{m.id}?fields=id" for m in list(c.sim.world.iter_media(acc.id))[:20]]
            _, _, body = await c.post("/v25.0/", {"access_token": acc.token, "batch": ops(urls)})
            results.append([entry is None for entry in body])
            assert c.sim.stats()["faults"].get("batch_null", 0) == sum(results[-1])
    assert results[0] == results[1]
    assert 0 < sum(results[0]) < 20
