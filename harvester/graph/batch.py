"""Graph batch requests as pure data: ops -> the POST's form fields, the reply -> one result per op.

A batch is `POST /vNN.0/` with a form field `batch`, a JSON array of at most 50
`{"method": "GET", "relative_url": "<media-id>/insights?metric=a,b"}`. Meta answers 200 with a JSON
array in request order; each entry is `{"code": <status>, "headers": [{"name", "value"}],
"body": "<JSON text>"}`, or `null` for an op Meta did not finish within its time budget.

Nothing here does I/O or interprets Graph errors. The access token is not put in the form: the
client sends it in the `Authorization` header, which Meta (and the simulator) take as the batch's
fallback token for every op that names none. Each op's status, headers and body are handed back
exactly as an HTTP reply would give them, so `graph.errors.decode_reply` classifies a failed
op with the same taxonomy as a failed GET. An op counts as one call against the rate limits: a
batch saves round trips and latency, not quota.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson

from harvester.catalog import BATCH_MAX_OPS as MAX_OPS
from harvester.graph.errors import MalformedReply, scrub

__all__ = [
    "FORM_CONTENT_TYPE",
    "MAX_OPS",
    "BatchOp",
    "OpResult",
    "decode_batch",
    "encode_batch",
    "encode_batch_body",
    "insights_op",
]


# Credentials ride in the Authorization header. An op carrying one would put a token in a request
# body that proxies and request logs may keep, so encode_batch refuses it.
_CREDENTIALS = frozenset({"access_token", "appsecret_proof", "appsecret_time"})
# Kept literal in relative_url: metric lists stay readable and Meta splits on the comma either way.
_SAFE = ",_.-~"
# Characters quote() would escape in a path and in a query key or value.
_PATH_ESCAPE = re.compile(r"[^A-Za-z0-9,_.~/-]")
_QUERY_ESCAPE = re.compile(r"[^A-Za-z0-9,_.~-]")

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A relative_url holds only letters, digits, _SAFE, "/", "?", "=", "&" and %XX escapes, so it needs
# no JSON escaping and only these characters form-encoded ("%" first, or it would be doubled).
_FORM_ESCAPES = (("%", "%25"), ("/", "%2F"), (",", "%2C"), ("?", "%3F"), ("=", "%3D"), ("&", "%26"))
# `{"method":"GET","relative_url":"` and `"}`, form-encoded once.
_OP_HEAD = "%7B%22method%22%3A%22GET%22%2C%22relative_url%22%3A%22"
_OP_TAIL = "%22%7D"


class BatchOp(NamedTuple):
    """One GET inside a batch: a path relative to the version root (`"<id>/insights"`) and its
    query parameters in order. A NamedTuple, like `OpResult`: one is built per op."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def relative_url(self) -> str:
        path = _path(self.path)
        return f"{path}?{_query(self.params)}" if self.params else path

    @property
    def form_encoded(self) -> str:
        """`relative_url` form-encoded. Ops of one media kind share their query, so it is
        encoded once per run, not once per op."""
        path = _form_escape(_path(self.path))
        return f"{path}%3F{_form_query(self.params)}" if self.params else path


def _path(path: str) -> str:
    path = path.lstrip("/")
    return quote(path, safe="/" + _SAFE) if _PATH_ESCAPE.search(path) else path


@lru_cache(maxsize=1024)
def _query(params: tuple[tuple[str, str], ...]) -> str:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params)


@lru_cache(maxsize=1024)
def _form_query(params: tuple[tuple[str, str], ...]) -> str:
    return _form_escape(_query(params))


def _form_escape(url: str) -> str:
    for char, escape in _FORM_ESCAPES:
        if char in url:
            url = url.replace(char, escape)
    return url


def _quote(text: str) -> str:
    # Ids and metric names never need escaping; skipping quote() for them halves encoding time.
    return quote(text, safe=_SAFE) if _QUERY_ESCAPE.search(text) else text


def insights_op(media_id: str, metrics: Sequence[str], *, breakdown: str | None = None) -> BatchOp:
    """The op for `GET /{media_id}/insights?metric=a,b[&breakdown=k]`."""
    params: tuple[tuple[str, str], ...] = (("metric", ",".join(metrics)),)
    if breakdown is not None:
        params += (("breakdown", breakdown),)
    return BatchOp(f"{media_id}/insights", params)


class OpResult(NamedTuple):
    """One answered op, shaped like an HTTP reply for `decode_reply(status, headers, body)`.

    A NamedTuple, not a frozen dataclass: one is built per op, and a frozen dataclass's __init__
    costs several times more.
    """

    status: int
    headers: dict[str, str]
    body: bytes


def encode_batch(ops: Sequence[BatchOp], *, include_headers: bool) -> dict[str, str]:
    """The form fields of a batch POST (`batch`, `include_headers`), without any token.

    `include_headers=False` makes replies smaller but drops each op's usage headers
    (`X-Business-Use-Case-Usage`), which pacing and throttle delays are read from.
    Raises ValueError for no ops, more than `MAX_OPS`, or an op carrying credentials.
    """
    _check(ops)
    entries = [{"method": "GET", "relative_url": op.relative_url} for op in ops]
    return {
        "batch": orjson.dumps(entries).decode(),
        "include_headers": "true" if include_headers else "false",
    }


def encode_batch_body(ops: Sequence[BatchOp], *, include_headers: bool) -> bytes:
    """`encode_batch` as a ready form body, to send with `Content-Type: FORM_CONTENT_TYPE`.

    The same bytes as `urlencode(encode_batch(...))`, built without it: urlencode escapes the batch
    JSON with one Python call per byte, which costs more client CPU than decoding the reply.
    """
    _check(ops)
    parts = [_OP_HEAD + op.form_encoded + _OP_TAIL for op in ops]
    flag = "true" if include_headers else "false"
    return f"batch=%5B{'%2C'.join(parts)}%5D&include_headers={flag}".encode()


def _check(ops: Sequence[BatchOp]) -> None:
    if not ops:
        raise ValueError("a batch needs at least one op")
    if len(ops) > MAX_OPS:
        raise ValueError(f"a batch holds at most {MAX_OPS} ops, got {len(ops)}")
    for index, op in enumerate(ops):
        if any(key in _CREDENTIALS for key, _ in op.params):
            raise ValueError(f"op {index} carries a credential parameter; use the header token")


def decode_batch(reply: object, n_ops: int) -> list[OpResult | None]:
    """One entry per op, in request order; None where Meta answered `null` (retry those alone).

    `reply` is the parsed JSON of a 2xx batch POST (a failed POST is a plain Graph error for the
    client to classify). Total: any input either decodes or raises `MalformedReply`, e.g. when the
    reply is not a list of `n_ops` entries or an entry lacks an integer `code`.
    """
    if not isinstance(reply, list):
        raise MalformedReply(f"batch reply is not a list: {_preview(reply)}")
    if len(reply) != n_ops:
        raise MalformedReply(f"batch reply has {len(reply)} entries for {n_ops} ops")
    return [
        None if entry is None else _op_result(index, entry) for index, entry in enumerate(reply)
    ]


def _op_result(index: int, entry: Any) -> OpResult:
    if not isinstance(entry, dict):
        raise MalformedReply(f"batch entry {index} is not an object: {_preview(entry)}")
    status = entry.get("code")
    if isinstance(status, bool) or not isinstance(status, int):
        raise MalformedReply(f"batch entry {index} has no integer code: {_preview(status)}")
    body = entry.get("body")
    if body is None:
        # Meta omits the body of some empty replies; decode_reply classifies the empty bytes.
        raw = b""
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raise MalformedReply(f"batch entry {index}: body is not a string: {_preview(body)}")
    return OpResult(status, _headers(index, entry.get("headers")), raw)


def _headers(index: int, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise MalformedReply(f"batch entry {index}: headers is not a list")
    headers: dict[str, str] = {}
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(value, str):
            raise MalformedReply(f"batch entry {index}: a header is not a name/value pair")
        headers[name] = value
    return headers


def _preview(value: object) -> str:
    # Short and scrubbed: a reply may echo request URLs, and paging URLs carry tokens.
    return scrub(f"{type(value).__name__} {value!r:.60}")
