"""The `story_insights` webhook receiver: Meta's signed POSTs -> `media_insights` rows in the lake.

Stories vanish after 24 hours; Meta's answer is a webhook sent once, when a story expires. Events
are verified (`X-Hub-Signature-256`, an HMAC-SHA256 of the raw body keyed by the app secret, checked
in constant time), parsed whole before anything is kept, answered at once (Meta disables slow
endpoints), and written in batches: when `batch_rows` rows wait, every `flush_interval_seconds`,
and on shutdown. Each flush commits one Parquet file through `ParquetSink`, so a reader never
sees half of one, and shutdown first stops accepting and lets in-flight requests finish, then
flushes: every event that got a 200 is in the lake.

Status codes: 200 accepted (or a change of another field, ignored), 403 bad or missing signature,
400 malformed JSON or a payload not shaped like Meta's. Rejections are counted, never fatal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import signal
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import anyio
import orjson
from aiohttp import web
from anyio.abc import TaskStatus

from harvester.config import Config, ConfigError, OutputSettings
from harvester.graph.errors import MalformedReply
from harvester.graph.replies import number
from harvester.harvest.pipeline import new_run_id
from harvester.harvest.rows import RunRows
from harvester.lake.fs import open_output
from harvester.lake.sink import ParquetSink
from harvester.models import Dataset, Rows, Secret

log = logging.getLogger("harvester.webhook")

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Meta's notifications are a few hundred bytes; anything near this is not one of them.
MAX_BODY_BYTES = 1024 * 1024
# Seconds in-flight requests get to finish on shutdown before aiohttp cancels them.
SHUTDOWN_GRACE_SECONDS = 5.0
# Recently seen (media_id, values) pairs: Meta resends a notification it thinks was not delivered.
SEEN_EVENTS = 10_000


class MalformedPayload(ValueError):
    """A POST body that is not JSON, or not shaped like Meta's webhook notifications."""


@dataclass(frozen=True, slots=True)
class StoryEvent:
    """One `story_insights` change: a story's final metrics, sent when it expired."""

    account_id: str
    media_id: str
    values: tuple[tuple[str, int | float | None], ...]


class WebhookStatistics(NamedTuple):
    events_accepted: int
    duplicates: int
    rows_written: int
    rows_pending: int
    files_written: int
    bad_signatures: int
    malformed: int
    ignored_changes: int
    handshakes: int
    handshakes_refused: int
    flush_failures: int


def signature(app_secret: bytes, body: bytes) -> str:
    """The header value Meta sends: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    # Constant time, so response timing tells a forger nothing about how much of a guess matched.
    return hmac.compare_digest(signature(app_secret, body).encode(), header.strip().encode())


def parse_story_insights(body: bytes) -> tuple[list[StoryEvent], int]:
    """The story_insights events of a notification body, and how many other changes it had."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"not JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("object") != "instagram":
        raise MalformedPayload("not an Instagram notification (object != 'instagram')")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise MalformedPayload("'entry' is not a list")
    events: list[StoryEvent] = []
    ignored = 0
    for entry in entries:
        if not isinstance(entry, dict) or not _ident(entry.get("id")):
            raise MalformedPayload("an entry without an id")
        changes = entry.get("changes")
        if not isinstance(changes, list):
            raise MalformedPayload("an entry without a 'changes' list")
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str):
                raise MalformedPayload("a change without a field")
            if change["field"] != "story_insights":
                ignored += 1
                continue
            events.append(_story_event(str(entry["id"]), change.get("value")))
    return events, ignored


def _ident(value: object) -> bool:
    return (isinstance(value, str) and value.isdigit()) or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def _story_event(account_id: str, value: object) -> StoryEvent:
    if not isinstance(value, dict) or not _ident(value.get("media_id")):
        raise MalformedPayload("a story_insights change without a media_id")
    metrics: list[tuple[str, int | float | None]] = []
    for name, raw in value.items():
        if name == "media_id":
            continue
        if raw is None:
            metrics.append((name, None))
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            # Exact, as a reply's values: RunRows.story_insights puts an int in `value`, a
            # fraction in `value_float`. One that no column holds (beyond 64 bits) is refused
            # here, with the payload, rather than failing the batch's rows later.
            try:
                number(name, raw)
            except MalformedReply as error:
                raise MalformedPayload(str(error)) from None
            metrics.append((name, raw))
        # Other shapes are fields Meta may add later; skipping them keeps the rest of the event.
    return StoryEvent(account_id, str(value["media_id"]), tuple(metrics))


class StoryInsightsReceiver:
    """The aiohttp application plus its batching writer; `serve()` runs both until cancelled."""

    def __init__(
        self,
        *,
        app_secret: Secret,
        verify_token: Secret,
        output: OutputSettings,
        api_version: str,
        path: str = "/webhook",
        batch_rows: int = 10_000,
        flush_interval_seconds: float = 60.0,
        run_id: str | None = None,
    ) -> None:
        self._secret = app_secret.reveal().encode()
        self._verify_token = verify_token.reveal().encode()
        self._output = output
        self.path = path
        self._batch_rows = batch_rows
        self._interval = flush_interval_seconds
        self.run_id = run_id or "webhook-" + new_run_id()
        self._rows = RunRows(run_id=self.run_id, api_version=api_version)
        self._pending: list[tuple[Any, ...]] = []
        self._seen: OrderedDict[tuple[str, tuple[tuple[str, int | float | None], ...]], None] = (
            OrderedDict()
        )
        # Made in the event loop (serve/flush): anyio primitives need a running backend.
        self._wake: anyio.Event | None = None
        self._flush_lock: anyio.Lock | None = None
        self._closed = False
        self._committed: anyio.Event | None = None  # set (and replaced) at each committed file
        self._flushes = 0
        self._counts = dict.fromkeys(WebhookStatistics._fields, 0)

    @classmethod
    def from_config(cls, config: Config) -> StoryInsightsReceiver:
        """The receiver a config describes; ConfigError when a secret it needs is not set."""
        if config.graph.app_secret is None:
            raise ConfigError(
                config.source, "[graph].app_secret_env", "required by the webhook receiver"
            )
        hook = config.webhook
        if hook.verify_token is None:
            raise ConfigError(
                config.source, "[webhook].verify_token_env", "required by the webhook receiver"
            )
        return cls(
            app_secret=config.graph.app_secret,
            verify_token=hook.verify_token,
            output=config.output,
            api_version=config.graph.api_version,
            path=hook.path,
            batch_rows=hook.batch_rows,
            flush_interval_seconds=hook.flush_interval_seconds,
        )

    def statistics(self) -> WebhookStatistics:
        return WebhookStatistics(**{**self._counts, "rows_pending": len(self._pending)})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get(self.path, self._handshake)
        app.router.add_post(self.path, self._notification)
        return app

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen until cancelled, reporting the bound port; then drain requests and flush."""
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        )
        self._wake = anyio.Event()
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._flusher)
                task_status.started(runner.addresses[0][1])
                await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                # Stop accepting and let in-flight requests finish first: an event answered 200
                # is in `_pending` before its reply is sent, so the last flush below keeps it.
                await runner.cleanup()
                # A request aiohttp still lets through now gets a 503 (Meta sends it again)
                # rather than a 200 for rows the last flush would no longer take.
                self._closed = True
                await self.flush()

    async def flush(self) -> None:
        """Commit every waiting row as one Parquet file (nothing to do when none wait)."""
        if self._flush_lock is None:
            self._flush_lock = anyio.Lock()
        # Shielded: once rows leave `_pending` they must reach a file, even when the periodic
        # flusher is cancelled at shutdown (a cancelled wait for a worker thread would drop them).
        with anyio.CancelScope(shield=True):
            await self._flush()

    async def _flush(self) -> None:
        assert self._flush_lock is not None
        async with self._flush_lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            self._flushes += 1
            sink = ParquetSink(
                open_output(self._output),
                run_id=f"{self.run_id}-{self._flushes:05d}",
                snapshot_date=datetime.now(UTC).date(),
                settings=self._output,
            )
            try:
                stats = await anyio.to_thread.run_sync(_write, sink, rows)
            except Exception:
                # Keep the rows for the next flush; a full disk or a lost bucket may come back.
                self._pending[:0] = rows
                self._counts["flush_failures"] += 1
                log.exception("webhook flush failed; %d rows kept for the next one", len(rows))
                return
            self._counts["rows_written"] += stats[0]
            self._counts["files_written"] += stats[1]
            if self._committed is not None:
                self._committed.set()
                self._committed = None

    async def wait_for_files(self, count: int) -> None:
        """Return once `count` files have been committed (for supervisors and tests)."""
        while self._counts["files_written"] < count:
            if self._committed is None:
                self._committed = anyio.Event()
            await self._committed.wait()

    async def _flusher(self) -> None:
        while True:
            wake = self._wake = anyio.Event()
            with anyio.move_on_after(self._interval):
                await wake.wait()
            await self.flush()

    async def _handshake(self, request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "").encode()
        challenge = query.get("hub.challenge")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            token, self._verify_token
        ):
            self._counts["handshakes_refused"] += 1
            return web.Response(status=403, text="verify token mismatch")
        if challenge is None:
            self._counts["handshakes_refused"] += 1
            return web.Response(status=400, text="hub.challenge missing")
        self._counts["handshakes"] += 1
        return web.Response(text=challenge)

    async def _notification(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_ok(self._secret, body, request.headers.get(SIGNATURE_HEADER)):
            self._counts["bad_signatures"] += 1
            return web.Response(status=403, text="bad signature")
        try:
            events, ignored = parse_story_insights(body)
        except MalformedPayload as error:
            self._counts["malformed"] += 1
            return web.Response(status=400, text=str(error))
        self._counts["ignored_changes"] += ignored
        if self._closed:
            # No await from here to the reply: rows accepted below are in the last flush.
            return web.Response(status=503, text="shutting down")
        self._accept(events)
        if len(self._pending) >= self._batch_rows and self._wake is not None:
            self._wake.set()
        return web.Response(text="EVENT_RECEIVED")

    def _accept(self, events: list[StoryEvent]) -> None:
        for event in events:
            key = (event.media_id, event.values)
            if key in self._seen:
                self._counts["duplicates"] += 1
                continue
            self._seen[key] = None
            if len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
            self._counts["events_accepted"] += 1
            self._pending += self._rows.story_insights(
                event.account_id, event.media_id, event.values
            )


async def run_webhook(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> WebhookStatistics:
    """Serve the receiver a config describes until SIGINT or SIGTERM, then flush and return."""
    receiver = StoryInsightsReceiver.from_config(config)
    # Signals are caught before the port opens, so a stop sent right after "ready" is never lost.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            bound = await tg.start(receiver.serve, host, port)
            if on_ready is not None:
                on_ready(f"http://{host}:{bound}{receiver.path}")
            async for _ in signals:
                break
            tg.cancel_scope.cancel()
    return receiver.statistics()


def _write(sink: ParquetSink, rows: list[tuple[Any, ...]]) -> tuple[int, int]:
    try:
        sink.write(Rows(Dataset.MEDIA_INSIGHTS, rows))
        stats = sink.close()
    except BaseException:
        sink.abort()
        raise
    return stats.rows[Dataset.MEDIA_INSIGHTS.value], stats.files


__all__ = [
    "MalformedPayload",
    "StoryEvent",
    "StoryInsightsReceiver",
    "WebhookStatistics",
    "parse_story_insights",
    "run_webhook",
    "signature",
    "signature_ok",
]
