"""One API call as the router sees it, whether it came over HTTP or as a batch op."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

# Parameters that authenticate a call: never logged, never part of a fault's identity.
AUTH_PARAMS = frozenset({"access_token", "appsecret_proof", "appsecret_time", "input_token"})


@dataclass(slots=True)
class Call:
    """The request, plus what the router learns while serving it (for the log and headers)."""

    method: str
    path: str  # with the version prefix, no query: "/v25.0/1789.../insights"
    query: list[tuple[str, str]]  # every parameter in order, auth ones included (paging URLs)
    params: dict[str, str]  # last value of each parameter, auth ones included
    token: str | None
    base_url: str  # "http://127.0.0.1:PORT": `paging.next` is built from the request's own host
    batch: bool = False
    account_id: str | None = None
    object_id: str | None = None
    edge: str | None = None
    token_sha256: str | None = None
    host: str = "facebook"  # which host was called: "facebook" or "instagram"

    def public_params(self) -> dict[str, str]:
        return {k: v for k, v in self.params.items() if k not in AUTH_PARAMS}

    def url_with(self, **changes: str | None) -> str:
        """This call's absolute URL with some parameters replaced or removed (None)."""
        # `urlencode` with remembered quoting, written out (it was a tenth of the account
        # insights' reply time).
        kept = [f"{_quoted(k)}={_quoted(v)}" for k, v in self.query if k not in changes]
        kept += [f"{_quoted(k)}={_quoted(v)}" for k, v in changes.items() if v is not None]
        return f"{self.base_url}{self.path}?{'&'.join(kept)}"

    def prefix_without(self, names: frozenset[str]) -> str:
        """`url_with(**{name: None for name in names})` and the separator a further parameter
        takes ("?" when nothing is kept, else "&"), remembered: an account insights reply's
        paging links drop since/until, and every day of an account's window keeps the same rest
        (its token among it), so it is quoted and joined once, not per reply."""
        kept = tuple([kv for kv in self.query if kv[0] not in names])
        return _prefix(self.base_url, self.path, kept)


@lru_cache(maxsize=4096)
def _prefix(base_url: str, path: str, query: tuple[tuple[str, str], ...]) -> str:
    """See `Call.prefix_without` (a quoted pair never ends in "?", so "?" ends the URL only
    when nothing is kept, as `url_with`'s would)."""
    text = "&".join([f"{_quoted(k)}={_quoted(v)}" for k, v in query])
    return f"{base_url}{path}?{text}&" if text else f"{base_url}{path}?"


@lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    """`quote_plus`, remembered: a paging link repeats its call's parameters (a token of ~150
    characters among them), and quoting them again for every link was a sixth of the
    simulator's CPU."""
    return quote_plus(text)


@dataclass(slots=True)
class Reply:
    status: int
    body: Any
    error_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
