"""GraphClient: the only code that speaks HTTP to the Graph API.

Every request goes through one order: retry loop -> health -> rate gate -> HTTP -> usage headers
-> classify -> health. The health watch (`graph.health`) sees every attempt's outcome and turns a
run in which nothing works into one `NothingWorks` for that and every later request.
aiohttp exceptions and raw statuses never leave this module: callers see parsed JSON or a
`GraphError` from `graph.errors`. The access token travels in the Authorization header only,
and `paging.next` URLs (which Meta fills with the token) are stripped of it before we follow them.

Each account's login picks its host here and nowhere else (`_root_of`): graph.facebook.com for
Facebook Login, graph.instagram.com for Instagram Login, so a token never reaches the other host.
Whether graph.instagram.com takes batch POSTs is unconfirmed: with `[graph] instagram_batch =
"auto"` the first refusal of one turns that host's batches into single GETs for the run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

import aiohttp
import anyio
import orjson
from yarl import URL

from harvester.config import GraphSettings, LimitSettings, RetrySettings
from harvester.graph.batch import FORM_CONTENT_TYPE, BatchOp, decode_batch, encode_batch_body
from harvester.graph.errors import (
    AccountFatal,
    GraphError,
    InvalidRequest,
    MalformedReply,
    NothingWorks,
    Throttled,
    TransportError,
    TransportReason,
    decode_reply,
    detached,
)
from harvester.graph.gate import APP_SCOPE, Charge, RateGate
from harvester.graph.health import HealthWatch
from harvester.graph.retry import RetryBudget, next_delay, retrying
from harvester.graph.usage import parse_usage
from harvester.models import Account, Secret

log = logging.getLogger(__name__)

# Query keys that carry credentials; removed from every URL we follow, store or log.
SECRET_PARAMS = frozenset({"access_token", "appsecret_proof", "appsecret_time"})


class LiveCounters(Protocol):
    """What the client counts into the run's live counters (the progress display reads them
    while the run goes): the run's counters object, whatever layer defines it."""

    requests: int


class _Counters:
    requests = 0


class ClientStatistics(NamedTuple):
    requests: int
    retries: int
    errors_by_code: dict[str, int]


class GraphClient:
    """One aiohttp session for the whole run, shared by every account."""

    def __init__(
        self,
        graph: GraphSettings,
        limits: LimitSettings,
        retry: RetrySettings,
        *,
        gate: RateGate | None = None,
        rng: random.Random | None = None,
        counters: LiveCounters | None = None,
    ) -> None:
        self._graph = graph
        self._limits = limits
        self._root = URL(graph.base_url.rstrip("/") + "/" + graph.api_version + "/")
        self._roots = {
            "facebook": self._root,
            "instagram": URL(graph.instagram_base_url.rstrip("/") + "/" + graph.api_version + "/"),
        }
        # Instagram Login's batch POSTs: None until one is answered or refused ("auto").
        self._instagram_batches: bool | None = {"on": True, "off": False}.get(graph.instagram_batch)
        self.gate = gate or RateGate(limits)
        self.policy = retry
        self._hosts = {login: _host(root) for login, root in self._roots.items()}
        self.health = HealthWatch(
            retry.fail_fast_seconds, host=self._hosts["facebook"], api_version=graph.api_version
        )
        self.retry_budget = RetryBudget(self.policy)
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._proofs: dict[Secret, str] = {}
        self._counters: LiveCounters = counters or _Counters()
        self._retries = 0
        self._errors: Counter[str] = Counter()

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_requests_in_flight, keepalive_timeout=30.0
        )
        timeout = aiohttp.ClientTimeout(
            total=self._graph.timeout_seconds, sock_connect=self._graph.connect_timeout_seconds
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, json_serialize=lambda o: orjson.dumps(o).decode()
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        path: str,
        params: Mapping[str, str] | Callable[[], Mapping[str, str]],
        *,
        account: Account,
        charge: Charge = "account",
    ) -> Any:
        """GET `path` (relative to the version root) for `account`, with retries and pacing.

        `params` may be a function: it is then called once the rate gate lets the request go,
        so a request that queued behind a block is built from what the run knows by then (for
        instance, metrics Meta rejected meanwhile are no longer asked). `charge` "app": Meta
        counts the call against the app's platform limit only (`graph.gate.Charge`).
        """
        base = self._root_of(account).join(URL(path))
        if callable(params):
            make = params
            return await self._get_url(lambda: base.with_query(dict(make())), account, charge)
        return await self._get_url(base.with_query(dict(params)), account, charge)

    async def paginate(
        self, path: str, params: Mapping[str, str], *, account: Account
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the `data` list of each page, following `paging.next` with the token removed."""
        root = self._root_of(account)
        url: URL | None = root.join(URL(path)).with_query(dict(params))
        while url is not None:
            if url.origin() != root.origin():
                # The token goes to its own login's host only, whatever a reply links to.
                raise MalformedReply(f"{path}: paging.next leads to another host ({url.host})")
            page = await self._get_url(url, account)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise MalformedReply(f"{url.path}: a page without a 'data' list")
            yield data
            nxt = page.get("paging", {}).get("next") if isinstance(page, dict) else None
            url = strip_secrets(URL(nxt)) if isinstance(nxt, str) and nxt else None

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(self._counters.requests, self._retries, dict(self._errors))

    def host_of(self, account: Account) -> str:
        """The host (with its port, if any) the account's requests go to: what a failure names."""
        return self._hosts[account.login]

    def _root_of(self, account: Account) -> URL:
        """The version root of the account's own host: the one place a login picks a host."""
        return self._roots[account.login]

    async def _get_url(
        self, target: URL | Callable[[], URL], account: Account, charge: Charge = "account"
    ) -> Any:
        return await self._retrying(lambda: self._attempt(target, account, charge))

    async def batch(self, account: Account, ops: Sequence[BatchOp]) -> list[Any]:
        """One Graph batch POST of `ops` for `account`; Meta charges each op as one call.

        The POST itself is retried like any request. Each op comes back as its parsed JSON, the
        `GraphError` it failed with (already applied to the rate gate: throttling blocks the
        scope, a dead token closes the account), or None where Meta ran out of time for it.
        """
        instagram = account.login == "instagram"
        if instagram and self._instagram_batches is False:
            return await self._singles(account, ops)
        body = encode_batch_body(ops, include_headers=True)
        root = self._root_of(account)

        async def attempt() -> list[Any]:
            self._before_attempt()
            async with self.gate.slot(account.id, cost=len(ops)):
                self._unless_stopped()
                try:
                    status, headers, raw = await self._send(root, account, body)
                    reply = self._decode(status, headers, raw, account, (), len(ops), root.path)
                    results = decode_batch(reply, len(ops))
                except GraphError as error:
                    self._after_failure(account, error)
                    raise
                # Meta ran the ops in order: the last answered op's usage is the newest, and it
                # counts that many of ours. Earlier ops' usage headers add nothing (and parsing
                # them per op costs more client CPU than their bodies).
                last = max((i for i, r in enumerate(results) if r is not None), default=-1)
                out: list[Any] = []
                for index, (op, result) in enumerate(zip(ops, results, strict=True)):
                    if result is None:
                        out.append(None)
                        continue
                    pending = index + 1 if index == last else None
                    try:
                        out.append(self._decode(*result, account, _metrics(op.params), pending))
                        self.health.succeeded(account.id)
                    except GraphError as error:
                        self._after_failure(account, error, raising=False)
                        out.append(detached(error))
                self._unless_stopped()
                return out

        if not (instagram and self._instagram_batches is None):
            results: list[Any] = await self._retrying(attempt)
            return results
        try:
            results = await self._retrying(attempt)
        except InvalidRequest as refused:
            if self._instagram_batches is None:
                log.warning(
                    "graph.instagram.com refused a batch POST (%s): its requests go one by one",
                    refused.message,
                )
            self._instagram_batches = False
            return await self._singles(account, ops)
        self._instagram_batches = True
        return results

    async def _singles(self, account: Account, ops: Sequence[BatchOp]) -> list[Any]:
        """`ops` as single GETs, answered like a batch's: each op's JSON or its GraphError.
        Each GET is one attempt (the caller asks a failed op again, as for a batch op); they go
        side by side, as fast as the rate gate lets them."""
        root = self._root_of(account)
        out: list[Any] = [None] * len(ops)

        async def one(index: int, op: BatchOp) -> None:
            url = root.join(URL(op.path.lstrip("/"))).with_query(list(op.params))
            try:
                out[index] = await self._attempt(url, account)
            except NothingWorks:
                raise
            except GraphError as error:
                out[index] = detached(error)

        async with anyio.create_task_group() as tg:
            for index, op in enumerate(ops):
                tg.start_soon(one, index, op)
        return out

    async def refresh_instagram_token(self, account: Account) -> Any:
        """`GET refresh_access_token?grant_type=ig_refresh_token` for an Instagram Login
        account, as Meta documents it: on graph.instagram.com, without a version, the token
        as `access_token` (also in the Authorization header, like every call)."""
        if account.login != "instagram":
            raise ValueError("only Instagram Login tokens are refreshed this way")
        url = (
            self._roots["instagram"]
            .with_path("/refresh_access_token")
            .with_query(grant_type="ig_refresh_token", access_token=account.token.reveal())
        )
        return await self._get_url(url, account)

    def close_account(self, account: Account, error: AccountFatal) -> None:
        """Stop every call for the account: its token is unusable for reasons found outside a
        reply's error (it belongs to another account)."""
        if self.gate.closed(account.id) is None:
            self._errors[error.label] += 1
            self.gate.close(account.id, error)

    def closed(self, account_id: str) -> BaseException | None:
        """The token or permission error that stopped the account, whichever request met it."""
        return self.gate.closed(account_id)

    def failure(self, account_id: str) -> BaseException | None:
        """Why the account failed: the error that closed it, else the last error of an account
        none of whose requests succeeded; None when it did not fail."""
        return self.gate.closed(account_id) or self.health.unanswered(account_id)

    def stopped(self) -> NothingWorks | None:
        """The NothingWorks every request now raises, once the health watch stopped the run."""
        return self.health.stopped()

    def room(self, account_id: str) -> int | None:
        """Calls the account's rate budget lets go now (None: no estimate yet): a batch of more
        ops would wait at the gate."""
        return self.gate.room(account_id)

    def retry_delay(self, attempt: int, error: GraphError) -> float | None:
        """For a call its caller repeats itself (a batch op asked again alone): seconds to wait
        before `attempt + 1`, or None to give up, by the same policy and run budget as the
        client's own retries, and counted like them."""
        delay = next_delay(self.policy, attempt, error, self._rng)
        if delay is None or not self.retry_budget.take():
            return None
        self._note_retry()
        return delay

    def _note_retry(self, *_: object) -> None:
        self._retries += 1

    async def _retrying(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        return await retrying(
            attempt, self.policy, self.retry_budget, self._rng, on_retry=self._note_retry
        )

    async def _attempt(
        self, target: URL | Callable[[], URL], account: Account, charge: Charge = "account"
    ) -> Any:
        # Everything up to classification happens inside the slot: a hot scope's next call must
        # see the usage and any block this reply reports before it is sent.
        self._before_attempt()
        async with self.gate.slot(account.id, charge=charge):
            self._unless_stopped()
            url = target() if callable(target) else target
            try:
                status, headers, body = await self._send(url, account, None)
                # Meta names a rejected metric by its index in the request: keep the list.
                metrics = url.query.get("metric", "").split(",")
                reply = self._decode(status, headers, body, account, metrics, 1, url.path)
            except GraphError as error:
                self._after_failure(account, error)
                raise
            self.health.succeeded(account.id)
            return reply

    def _before_attempt(self) -> None:
        """No request goes once nothing works; the first one starts the health watch's clock."""
        self._unless_stopped()
        self.health.attempting()

    def _unless_stopped(self) -> None:
        """Raise the run's NothingWorks if it has one. Asked again once the gate lets a request
        go: the watch may have decided while it waited for its slot."""
        if (stop := self.health.stopped()) is not None:
            raise stop

    def _after_failure(self, account: Account, error: GraphError, *, raising: bool = True) -> None:
        """Tell the health watch; raise NothingWorks instead of `error` once it decides (on this
        failure or before) that nothing works, unless the caller raises it later itself."""
        stop = self.health.failed(account.id, error, self.host_of(account))
        if stop is not None and raising:
            raise stop from error

    async def _send(
        self, url: URL, account: Account, form: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP exchange (a GET, or a POST of a form body); transport failures classified."""
        assert self._session is not None, "GraphClient used outside 'async with'"
        headers = {"Authorization": "Bearer " + account.token.reveal()}
        proof = None
        if account.login == "facebook" or self._graph.instagram_appsecret_proof:
            proof = self._proof(account.token)
        if proof is not None:
            url = url.update_query(appsecret_proof=proof)
        self._counters.requests += 1
        try:
            if form is None:
                request = self._session.get(url, headers=headers)
            else:
                headers["Content-Type"] = FORM_CONTENT_TYPE
                request = self._session.post(url, headers=headers, data=form)
            async with request as response:
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            error: GraphError = TransportError.from_exception(exc, reason=_reason(exc))
            self._errors[error.label] += 1
            raise error from None

    def _decode(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        account: Account,
        requested_metrics: Sequence[str],
        pending: int | None,
        path: str | None = None,
    ) -> Any:
        """Pace on the reply's usage headers, then parse it or raise its classified error.
        `pending` is how many calls of the current slot Meta had counted when it replied (None:
        leave its usage headers unread); `path` is the request URL's path (None for a batch op,
        whose relative_url has no version)."""
        minute = self._limits.regain_unit_seconds
        if pending is not None:
            self.gate.observe(parse_usage(headers, minute_seconds=minute), pending)
        try:
            return decode_reply(
                status,
                headers,
                body,
                requested_metrics=requested_metrics,
                minute_seconds=minute,
                requested_path=path,
            )
        except GraphError as error:
            self._errors[error.label] += 1
            if isinstance(error, Throttled):
                scope = APP_SCOPE if error.scope == "app" else account.id
                self.gate.block(scope, error.retry_after)
            elif isinstance(error, AccountFatal) and self.gate.closed(account.id) is None:
                self.gate.close(account.id, error)
            raise

    def _proof(self, token: Secret) -> str | None:
        secret = self._graph.app_secret
        if secret is None:
            return None
        proof = self._proofs.get(token)
        if proof is None:
            proof = hmac.new(
                secret.reveal().encode(), token.reveal().encode(), hashlib.sha256
            ).hexdigest()
            self._proofs[token] = proof
        return proof


def _reason(exc: BaseException) -> TransportReason:
    """Whether the host did not resolve, refused or could not be reached, or the connection
    failed otherwise (only a failure to connect names the host as the problem)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
        exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError
    ):
        return "refused"  # refused, no route, network unreachable
    return "other"


def _host(root: URL) -> str:
    host = root.host or str(root)
    return f"{host}:{root.port}" if root.explicit_port else host


def _metrics(params: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    for key, value in params:
        if key == "metric":
            return _split_metrics(value)
    return ()


@lru_cache(maxsize=256)
def _split_metrics(value: str) -> tuple[str, ...]:
    # Ops of one media kind repeat the same list: split it once, not once per op.
    return tuple(value.split(","))


def strip_secrets(url: URL) -> URL:
    """Drop credential parameters from a URL (Meta repeats access_token in `paging.next`)."""
    if not SECRET_PARAMS.intersection(url.query):
        return url
    return url.with_query({k: v for k, v in url.query.items() if k not in SECRET_PARAMS})
