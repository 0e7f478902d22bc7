"""Seeded faults: each kind's wire behaviour, reproducibility, and independence from call order."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from harvester.simulator import FaultSettings
from harvester.simulator.faults import FaultPlan

from .helpers import serve

pytestmark = pytest.mark.anyio


def test_draws_depend_on_identity_and_attempt_not_order() -> None:
    settings = FaultSettings(server_error=0.3, html_error=0.3, seed=5)
    paths = [f"/v25.0/{n}/insights" for n in range(40)]
    forward, backward = FaultPlan(settings), FaultPlan(settings)
    first = {p: forward.draw("GET", p, {"metric": "reach"}) for p in paths}
    second = {p: backward.draw("GET", p, {"metric": "reach"}) for p in reversed(paths)}
    assert first == second
    assert {k for k in first.values()} == {None, "server_error", "html_error"}


def test_a_retry_gets_a_fresh_draw_and_tokens_do_not_matter() -> None:
    plan = FaultPlan(FaultSettings(server_error=0.5, seed=1))
    draws = [plan.draw("GET", "/v25.0/1/insights", {"access_token": f"t{i}"}) for i in range(30)]
    assert {None, "server_error"} == set(draws)
    again = FaultPlan(FaultSettings(server_error=0.5, seed=1))
    assert draws == [again.draw("GET", "/v25.0/1/insights", {}) for _ in range(30)]


def test_zero_rates_never_fault() -> None:
    plan = FaultPlan(FaultSettings())
    assert all(plan.draw("GET", f"/{n}", {}) is None for n in range(100))


async def test_server_error() -> None:
    async with serve(faults=FaultSettings(server_error=1.0)) as c:
        acc = c.sim.world.accounts[0]
        status, headers, body = await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
        assert (status, body["error"]["code"]) in ((500, 1), (503, 2))
        assert body["error"]["is_transient"] is True
        assert "X-App-Usage" in headers
        [entry] = c.sim.request_log
        assert (entry["status"], entry["error_code"]) == (status, body["error"]["code"])
        assert c.sim.stats()["faults"] == {"server_error": 1}


async def test_html_error_page() -> None:
    async with serve(faults=FaultSettings(html_error=1.0)) as c:
        acc = c.sim.world.accounts[0]
        async with c.session.get(f"{c.sim.base_url}/v25.0/{acc.id}") as resp:
            assert resp.status in (502, 503)
            assert resp.content_type == "text/html"
            assert (await resp.text()).startswith("<!DOCTYPE html>")


async def test_truncated_json() -> None:
    async with serve(faults=FaultSettings(truncated_json=1.0)) as c:
        acc = c.sim.world.accounts[0]
        url = f"{c.sim.base_url}/v25.0/{acc.id}/media?access_token={acc.token}"
        async with c.session.get(url) as resp:
            assert resp.status == 200
            raw = await resp.read()
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)


async def test_dropped_connection_then_server_still_serves() -> None:
    async with serve(faults=FaultSettings(dropped_connection=1.0)) as c:
        acc = c.sim.world.accounts[0]
        with pytest.raises(aiohttp.ClientError):
            await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
        status, _, stats = await c.get("/__sim/stats")
        assert status == 200
        # aiohttp may retry an idempotent GET once on a dropped connection: every attempt dropped.
        assert stats["faults"] == {"dropped_connection": stats["requests_total"]}
        assert stats["requests_total"] >= 1


async def test_stall_delays_then_answers() -> None:
    async with serve(faults=FaultSettings(stall=1.0, stall_seconds=0.01)) as c:
        acc = c.sim.world.accounts[0]
        status, _, _ = await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
        assert status == 200
        assert c.sim.stats()["faults"] == {"stall": 1}


async def test_same_seed_same_faults_over_http() -> None:
    faults = FaultSettings(server_error=0.4, seed=9)
    outcomes = []
    for _ in range(2):
        async with serve(faults=faults) as c:
            acc = c.sim.world.accounts[0]
            run = []
            for media in list(c.sim.world.iter_media(acc.id))[:15]:
                status, _, _ = await c.get(f"/v25.0/{media.id}", access_token=acc.token)
                run.append(status)
            outcomes.append(run)
    assert outcomes[0] == outcomes[1]
    assert 200 in outcomes[0] and set(outcomes[0]) - {200}


async def test_latency_setting_still_answers() -> None:
    async with serve(latency_ms=2.0, latency_jitter_ms=1.0) as c:
        acc = c.sim.world.accounts[0]
        status, _, _ = await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
        assert status == 200
