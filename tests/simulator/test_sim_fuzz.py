"""Malformed input never crashes the simulator: always a Graph-style error or a valid reply.

The router is fuzzed directly (it is transport-free), and raw HTTP requests with garbage query
strings and bodies go to a real server running on a background event loop for this module.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester.simulator import SimulatorSettings, run_simulator
from harvester.simulator.app import SimState
from harvester.simulator.call import Call

from .helpers import BASE

STATE = SimState(BASE)
WORLD = STATE.world
ACC = WORLD.accounts[0]
MEDIA = list(WORLD.iter_media(ACC.id))[:8]
ALBUM = next(m for m in WORLD.iter_media(ACC.id) if m.children_ids)
IDS = [ACC.id, ALBUM.id, ALBUM.children_ids[0], WORLD.stories(ACC.id)[0].id, "me"] + [
    m.id for m in MEDIA
]
TOKENS = [ACC.token, WORLD.user_token, WORLD.accounts[-1].token, "", "junk"]
PARAMS = [
    "metric", "fields", "breakdown", "period", "since", "until", "limit", "after", "before",
    "metric_type", "timeframe", "batch", "include_headers", "appsecret_proof", "appsecret_time",
]  # fmt: skip
WORDS = ["reach", "impressions", "views", "profile_activity", "action_type", "age,gender", "day",
         "lifetime", "total_value", "this_week", "id,children{id}", "insights.metric(reach)",
         "1700000000", "-1", "0", "99999999999999999999", "{", "}", "(", ",", ".", "%", "\x00",
         "é", "..", "a{b{c{d{e{f}}}}}"]  # fmt: skip

text = st.one_of(st.sampled_from(WORDS), st.text(max_size=30))
EDGES = ["insights", "media", "children", "stories", "accounts"]
segments = st.lists(st.one_of(st.sampled_from(IDS + EDGES), text), max_size=4)
versions = st.sampled_from(["v25.0", "v17.0", "v18.0", "v9.0", "", "v25.0x", "vv"])


def check_body(status: int, body: Any) -> None:
    assert status != 500, body
    if status == 200:
        assert isinstance(body, dict | list)
    else:
        error = body["error"]
        assert isinstance(error["message"], str) and isinstance(error["code"], int)
        assert error["type"] in ("OAuthException", "GraphMethodException")


@settings(max_examples=300)
@given(
    version=versions,
    path=segments,
    params=st.dictionaries(st.sampled_from(PARAMS), text, max_size=6),
    token=st.sampled_from(TOKENS),
)
def test_router_never_crashes(
    version: str, path: list[str], params: dict[str, str], token: str
) -> None:
    full = "/" + "/".join([version, *path] if version else path)
    query = [*list(params.items()), ("access_token", token)]
    call = Call("GET", full, query, dict(query), token or None, "http://127.0.0.1:1")
    reply = STATE.router.handle(call)
    check_body(reply.status, orjson.loads(orjson.dumps(reply.body)))
    assert STATE.router.unhandled == 0


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int, dict[str, Any]]]:
    """A simulator on its own event loop thread, shared by this module's HTTP fuzz examples."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["stop"] = stop
        box["loop"] = asyncio.get_running_loop()
        async with run_simulator(
            SimulatorSettings(seed=7, accounts=3, media_per_account=30)
        ) as sim:
            box["sim"] = sim
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    assert ready.wait(10)
    sim = box["sim"]
    port = int(sim.base_url.rsplit(":", 1)[1])
    yield "127.0.0.1", port, box
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(10)


def raw_request(
    host: str, port: int, method: str, target: str, body: bytes, ctype: str
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("Content-Type", ctype)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


safe_path = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/%._-{}(),=&?", max_size=60)


@settings(
    max_examples=120,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    prefix=st.sampled_from(
        ["/v25.0/", "/v17.0/", "/", f"/v25.0/{ACC.id}/", f"/v25.0/{MEDIA[0].id}/"]
    ),
    tail=safe_path,
    body=st.one_of(st.binary(max_size=200), st.just(b"batch=%5B%7B%7D%5D&access_token=x")),
    ctype=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=zz",
            "text/plain",
            "application/json",
        ]
    ),
)
def test_http_never_crashes(
    server: tuple[str, int, dict[str, Any]],
    method: str,
    prefix: str,
    tail: str,
    body: bytes,
    ctype: str,
) -> None:
    host, port, box = server
    status, raw = raw_request(host, port, method, prefix + tail, body, ctype)
    check_body(status, orjson.loads(raw))
    assert box["sim"].stats()["unhandled_exceptions"] == 0


@settings(
    max_examples=80,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    urls=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [f"{m.id}/insights?metric=reach" for m in MEDIA] + ["http://[::1", "?"]
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    method=st.sampled_from(["GET", "POST", "", "get"]),
)
def test_batch_ops_never_crash(
    server: tuple[str, int, dict[str, Any]], urls: list[str], method: str
) -> None:
    host, port, box = server
    acc = box["sim"].world.accounts[0]
    ops = orjson.dumps([{"method": method, "relative_url": u} for u in urls])
    form = urlencode({"access_token": acc.token, "batch": ops.decode()}).encode()
    status, raw = raw_request(
        host, port, "POST", "/v25.0/", form, "application/x-www-form-urlencoded"
    )
    body = orjson.loads(raw)
    check_body(status, body)
    if status == 200:
        for entry in body:
            inner = orjson.loads(entry["body"])
            check_body(entry["code"], inner)
    assert box["sim"].stats()["unhandled_exceptions"] == 0
