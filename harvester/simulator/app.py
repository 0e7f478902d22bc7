"""The aiohttp.web application: HTTP in, `Call`s to the router, Meta-shaped replies and faults out.

One catch-all route and no middleware: the hot path (an insights GET) is a dictionary of params,
one router call and one orjson encode. Every reply, errors included, carries the usage headers.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from aiohttp import web

from harvester.simulator import batch, replies
from harvester.simulator.auth import token_from_header, token_sha256
from harvester.simulator.call import Call, Reply
from harvester.simulator.faults import FaultPlan
from harvester.simulator.ratelimit import RateLimiter
from harvester.simulator.router import Router
from harvester.simulator.settings import SimulatorSettings
from harvester.simulator.stats import Stats
from harvester.simulator.validity import parse_version
from harvester.simulator.world import World

JSON_TYPE = "application/json; charset=UTF-8"
STATE_KEY: web.AppKey[SimState] = web.AppKey("sim_state")
# Which host an app serves: "facebook" (graph.facebook.com) or "instagram" (graph.instagram.com).
HOST_KEY: web.AppKey[str] = web.AppKey("sim_host")


class SimState:
    """Everything one running simulator owns; shared by the HTTP handler and tests."""

    def __init__(self, settings: SimulatorSettings, world: World | None = None) -> None:
        self.settings = settings
        self.world = world or World.from_settings(settings)
        self.limiter = RateLimiter(settings.limits)
        self.router = Router(self.world, settings, self.limiter)
        self.faults = FaultPlan(settings.faults)
        self.stats = Stats(settings.request_log, settings.request_log_file)
        self._rng = random.Random(settings.seed)

    def snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot(self.limiter.blocked_rejections, self.router.unhandled)

    def latency(self) -> float:
        s = self.settings
        if s.latency_ms <= 0 and s.latency_jitter_ms <= 0:
            return 0.0
        jitter = self._rng.uniform(-s.latency_jitter_ms, s.latency_jitter_ms)
        return max(0.0, s.latency_ms + jitter) / 1000.0

    def headers(self, account_id: str | None) -> dict[str, str]:
        return {
            "Content-Type": JSON_TYPE,
            "X-App-Usage": self.limiter.app_usage(),
            "X-Business-Use-Case-Usage": self.limiter.business_usage(account_id),
        }

    def serve(self, call: Call, fault: str | None = None) -> Reply:
        """Route one call and log it; a `server_error` fault replaces the reply it would get.

        The faulted call is still routed first, so it is charged and logged like any call Meta
        received and then failed.
        """
        reply = self.router.handle(call)
        reply.headers = self.headers(call.account_id)
        if fault == "server_error":
            err = replies.server_error(self.faults.server_error_code(call.method, call.path))
            reply = Reply(err.status, err.body(), err.code, reply.headers)
        self.stats.record(call, reply.status, reply.error_code)
        return reply


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.Response(body=orjson.dumps(state.snapshot()), headers={"Content-Type": JSON_TYPE})


async def _graph(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    state.stats.request()
    try:
        return await _graph_inner(state, request)
    except Exception:
        state.router.unhandled += 1
        err = replies.server_error(1)
        return web.Response(
            status=err.status, body=orjson.dumps(err.body()), headers=state.headers(None)
        )


async def _graph_inner(state: SimState, request: web.Request) -> web.StreamResponse:
    host = request.app[HOST_KEY]
    delay = state.latency()
    if delay:
        await asyncio.sleep(delay)
    params = dict(request.query)
    query = list(request.query.items())
    method = request.method
    if method == "POST" and request.can_read_body:
        try:
            form = await request.post()
        except Exception:
            err = replies.bad_param("Could not parse the request body")
            return web.Response(
                status=err.status, body=orjson.dumps(err.body()), headers=state.headers(None)
            )
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
                query.append((key, value))
    token = params.get("access_token") or token_from_header(request.headers.get("Authorization"))
    base_url = f"{request.scheme}://{request.host}"
    path = request.path
    fault = state.faults.draw(method, path, params)
    if fault is not None:
        state.stats.fault(fault)
        if fault == "stall":
            await asyncio.sleep(state.settings.faults.stall_seconds)
        elif fault == "dropped_connection":
            transport = request.transport
            if transport is not None:
                transport.abort()  # no reply at all: the client sees the connection drop
            return web.Response(status=204)
        elif fault == "html_error":
            status = 502 if state.faults.server_error_code(method, path) == 1 else 503
            return web.Response(
                status=status,
                body=replies.html_error_page(status),
                headers={"Content-Type": "text/html; charset=utf-8"},
            )
    if method == "POST" and _is_version_root(path):
        reply = _batch(state, path, params, token, base_url, host)
        if fault == "server_error":
            err = replies.server_error(state.faults.server_error_code(method, path))
            reply = Reply(err.status, err.body(), err.code, reply.headers)
    else:
        reply = state.serve(Call(method, path, query, params, token, base_url, host=host), fault)
    body = orjson.dumps(reply.body)
    if fault == "truncated_json":
        body = body[: max(1, len(body) // 2)]
    return web.Response(status=reply.status, body=body, headers=reply.headers)


def _is_version_root(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    return not parts or (len(parts) == 1 and parts[0][:1] == "v" and parts[0][1:2].isdigit())


def _batch(
    state: SimState,
    path: str,
    params: dict[str, str],
    token: str | None,
    base_url: str,
    host: str = "facebook",
) -> Reply:
    prefix = path.rstrip("/") or f"/{state.settings.api_version}"
    headers = state.headers(None)
    envelope = Call("POST", path, [], params, token, base_url, edge="batch", host=host)
    # Which token sent the POST itself, for the log (the request log never holds a token).
    envelope.token_sha256 = None if token is None else token_sha256(token)
    try:
        if host == "instagram" and not state.settings.instagram_batch:
            raise replies.instagram_unsupported("POST")
        root = path.strip("/")
        if root and parse_version(root) is None:
            raise replies.unknown_path(f"/{root}/")
        ops = batch.parse_ops(params.get("batch"))
    except replies.GraphError as err:
        state.stats.record(envelope, err.status, err.code)
        return Reply(err.status, err.body(), err.code, headers)
    state.stats.record(envelope, 200, None)
    results: list[Reply | None] = []
    for op in ops:
        try:
            call = batch.op_call(op, prefix, token, base_url, params)
            call.host = host
        except ValueError:  # urlsplit refuses some relative_urls (a broken IPv6 host, say)
            bad = replies.bad_param("Invalid relative_url in batch request")
            results.append(Reply(bad.status, bad.body(), bad.code, state.headers(None)))
            continue
        fault = state.faults.draw(call.method, call.path, call.params, batch_op=True)
        if fault == "batch_null":
            state.stats.fault(fault)
            results.append(None)
            continue
        if fault is not None:
            state.stats.fault(fault)
        results.append(state.serve(call, fault))
    body = batch.render(results, batch.include_headers(params), _op_headers)
    return Reply(200, body, None, headers)


def _op_headers(reply: Reply) -> list[dict[str, str]]:
    return [
        batch.OP_CONTENT_TYPE,
        {"name": "X-App-Usage", "value": reply.headers.get("X-App-Usage", "{}")},
        {
            "name": "X-Business-Use-Case-Usage",
            "value": reply.headers.get("X-Business-Use-Case-Usage", "{}"),
        },
    ]


def build_app(state: SimState, host: str = "facebook") -> web.Application:
    """The app of one host; both hosts' apps share one `state` (world, budgets, request log)."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE_KEY] = state
    app[HOST_KEY] = host
    app.router.add_get("/__sim/stats", _stats)
    app.router.add_route("*", "/{tail:.*}", _graph)
    return app
