"""The batch POST at the version root: up to 50 ops, answered in order, each an independent call.

Every op goes through the same router as an HTTP request, so it is authenticated (its own token
or the batch's fallback), charged to the budgets and logged on its own, as Meta counts it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from harvester.simulator import replies
from harvester.simulator.call import Call, Reply

MAX_OPS = 50
OP_CONTENT_TYPE = {"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}


def parse_ops(raw: str | None) -> list[dict[str, Any]]:
    if raw is None:
        raise replies.bad_param("The parameter batch is required")
    try:
        ops = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise replies.bad_param("The parameter batch must be a JSON-encoded array") from None
    if not isinstance(ops, list) or not ops:
        raise replies.bad_param("The parameter batch must be a non-empty JSON-encoded array")
    if len(ops) > MAX_OPS:
        raise replies.bad_param(
            f"Too many requests in batch message. Maximum batch size is {MAX_OPS}"
        )
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise replies.bad_param(f"batch[{i}] must be a JSON object")
        url = op.get("relative_url")
        if not isinstance(url, str) or not url:
            raise replies.bad_param(f"Missing relative_url in batch request {i}")
        method = op.get("method", "GET")
        if not isinstance(method, str):
            raise replies.bad_param(f"Invalid method in batch request {i}")
    return ops


def op_call(
    op: dict[str, Any],
    version_prefix: str,
    fallback: str | None,
    base_url: str,
    envelope: dict[str, str] | None = None,
) -> Call:
    """The Call one op stands for; its relative_url may carry its own version and token.

    An op without a token of its own runs with the batch's token, and with the batch's
    appsecret_proof (and appsecret_time) for it: the proof is sent once, on the POST."""
    path, query_text = _split_url(op["relative_url"])
    path = "/" + path.lstrip("/")
    first = path.split("/", 2)[1]
    if not (first[:1] == "v" and first[1:2].isdigit()):
        path = version_prefix + path
    query = list(_query_pairs(query_text))
    params = dict(query)
    token = params.get("access_token") or fallback
    if "access_token" not in params and fallback is not None:
        query.append(("access_token", fallback))
        params["access_token"] = fallback
        for key in ("appsecret_proof", "appsecret_time"):
            value = (envelope or {}).get(key)
            if value is not None and key not in params:
                query.append((key, value))
                params[key] = value
    return Call(str(op.get("method", "GET")).upper(), path, query, params, token, base_url, True)


# What makes `urlsplit` do more than cut at the first "?": a scheme or a fragment, or characters
# it strips (tabs and newlines anywhere, control characters and spaces in front).
_NOT_PLAIN = re.compile(r"[:#\t\r\n]|^[\x00-\x20]|^//")


def _split_url(url: str) -> tuple[str, str]:
    """`urlsplit(url)`'s path and query. A client's relative_url is a plain "id/edge?query",
    every op's its own (its id), so urlsplit missed its cache each time: a twentieth of an
    account insights op, and cutting at "?" gives the same two parts."""
    if _NOT_PLAIN.search(url) is None:
        path, _, query = url.partition("?")
        return path, query
    split = urlsplit(url)
    return split.path, split.query


@lru_cache(maxsize=8192)
def _query_pairs(query: str) -> tuple[tuple[str, str], ...]:
    """A relative_url's parameters, remembered: every account's ops ask the same queries (their
    ids sit in the path), and parsing them anew was a sixth of an account insights op."""
    return tuple(parse_qsl(query, keep_blank_values=True))


def render(
    results: list[Reply | None], include_headers: bool, headers_of: Callable[[Reply], list[Any]]
) -> list[Any]:
    out: list[Any] = []
    for reply in results:
        if reply is None:
            out.append(None)
            continue
        entry: dict[str, Any] = {"code": reply.status}
        if include_headers:
            entry["headers"] = headers_of(reply)
        entry["body"] = orjson.dumps(reply.body).decode()
        out.append(entry)
    return out


def include_headers(params: dict[str, str]) -> bool:
    return params.get("include_headers", "true").lower() != "false"
