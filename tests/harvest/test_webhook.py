"""The story_insights webhook receiver, fed by the simulator's webhook sender over loopback."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from hypothesis import given
from hypothesis import strategies as st
from s3_server import make_bucket, moto_endpoint  # noqa: F401  (a fixture)

from harvester.config import ConfigError, OutputSettings, parse_config
from harvester.harvest.webhook import (
    MalformedPayload,
    StoryInsightsReceiver,
    parse_story_insights,
    signature_ok,
)
from harvester.lake.schema import SCHEMAS
from harvester.models import Dataset, Secret
from harvester.simulator import World
from harvester.simulator.webhook_sender import (
    STORY_FIELDS,
    WebhookSender,
    expired_stories,
    payload,
    sign,
)

APP_SECRET = "sim-app-secret"
VERIFY = "sim-verify-token"
WORLD = World(seed=5, accounts=40, media_per_account=0)
STORIES = expired_stories(WORLD)

pytestmark = pytest.mark.anyio


def read(lake: Path) -> list[dict[str, Any]]:
    if not (lake / "media_insights").exists():
        return []
    table = ds.dataset(lake / "media_insights", format="parquet", partitioning="hive").to_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def expected(stories: Any) -> set[tuple[str, str, str, int]]:
    return {
        (s.account_id, s.id, metric, WORLD.media_metric_value(s.id, metric))
        for s in stories
        for metric in STORY_FIELDS
    }


def got(lake: Path) -> set[tuple[str, str, str, int]]:
    return {(r["account_id"], r["media_id"], r["metric"], r["value"]) for r in read(lake)}


@asynccontextmanager
async def receiving(
    lake: Path, *, batch_rows: int = 10_000, interval: float = 3600.0
) -> AsyncIterator[tuple[StoryInsightsReceiver, WebhookSender]]:
    receiver = StoryInsightsReceiver(
        app_secret=Secret(APP_SECRET),
        verify_token=Secret(VERIFY),
        output=OutputSettings(str(lake)),
        api_version="v25.0",
        batch_rows=batch_rows,
        flush_interval_seconds=interval,
    )
    async with anyio.create_task_group() as tg, aiohttp.ClientSession() as session:
        port = await tg.start(receiver.serve, "127.0.0.1", 0)
        yield receiver, WebhookSender(session, f"http://127.0.0.1:{port}/webhook", APP_SECRET)
        tg.cancel_scope.cancel()


async def test_handshake_echoes_the_challenge_only_for_our_token(tmp_path: Path) -> None:
    async with receiving(tmp_path) as (receiver, sender):
        assert await sender.handshake(VERIFY, "1158201444") == (200, "1158201444")
        assert (await sender.handshake("not-ours", "42"))[0] == 403
    stats = receiver.statistics()
    assert (stats.handshakes, stats.handshakes_refused) == (1, 1)


async def test_signed_events_land_in_the_lake_and_forgeries_do_not(tmp_path: Path) -> None:
    first, forged, second = STORIES[:5], STORIES[5:8], STORIES[8:12]
    async with receiving(tmp_path) as (receiver, sender):
        assert await sender.send(WORLD, first) == 200
        body = orjson.dumps(payload(WORLD, forged))
        assert await sender.post(body, signature=sign(body, "wrong-secret")) == 403
        assert await sender.post(body, signature=None) == 403
        assert await sender.post(body, signature="sha256=") == 403
        assert await sender.post(b'{"object": "instagram", "entry": [', signature="") == 400
        assert await sender.post(b'{"object": "page", "entry": []}', signature="") == 400
        assert await sender.post(b'{"object": "instagram", "entry": [{}]}', signature="") == 400
        assert await sender.send(WORLD, second) == 200
        assert await sender.send(WORLD, first) == 200  # Meta resending: kept once
    stats = receiver.statistics()
    assert (stats.bad_signatures, stats.malformed) == (3, 3)
    assert (stats.events_accepted, stats.duplicates) == (9, 5)
    assert got(tmp_path) == expected([*first, *second])
    rows = read(tmp_path)
    assert len(rows) == 9 * len(STORY_FIELDS)
    assert {(r["media_product_type"], r["period"], r["breakdown"]) for r in rows} == {
        ("STORY", "lifetime", None)
    }
    file_schema = ds.dataset(tmp_path / "media_insights", format="parquet").schema
    assert file_schema.remove_metadata() == SCHEMAS[Dataset.MEDIA_INSIGHTS].remove_metadata()


async def test_the_lake_on_s3_compatible_storage_is_reached_through_output_s3_endpoint(
    tmp_path: Path,
    moto_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`[output] s3_endpoint` (MinIO, R2...) is where the webhook writes, with `[output]`'s
    codec, as a harvest does."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the config alone names the endpoint
    make_bucket(moto_endpoint, "hooks")
    text = f"""
[graph]
app_secret_env = "HOOK_APP_SECRET"
api_version = "v25.0"
[output]
path = "s3://hooks/lake"
s3_endpoint = "{moto_endpoint}"
compression = "snappy"
[webhook]
verify_token_env = "HOOK_VERIFY"
[[accounts]]
id = "17841400000000001"
token_env = "HOOK_TOKEN"
"""
    env = {"HOOK_APP_SECRET": APP_SECRET, "HOOK_VERIFY": VERIFY, "HOOK_TOKEN": "x"}
    config = parse_config(text, source="hook.toml", base_dir=tmp_path, env=env)
    receiver = StoryInsightsReceiver.from_config(config)
    stories = STORIES[:3]
    async with anyio.create_task_group() as tg, aiohttp.ClientSession() as session:
        port = await tg.start(receiver.serve, "127.0.0.1", 0)
        sender = WebhookSender(session, f"http://127.0.0.1:{port}/webhook", APP_SECRET)
        assert await sender.send(WORLD, stories) == 200
        await receiver.flush()
        tg.cancel_scope.cancel()
    assert receiver.statistics().files_written == 1

    s3 = pafs.S3FileSystem(
        endpoint_override=moto_endpoint.removeprefix("http://"), scheme="http", region="us-east-1"
    )
    dataset = ds.dataset(
        "hooks/lake/media_insights", filesystem=s3, format="parquet", partitioning="hive"
    )
    [fragment] = dataset.get_fragments()
    assert fragment.metadata.row_group(0).column(0).compression == "SNAPPY"
    table = dataset.to_table()
    columns = [c for c in table.column_names if c not in ("fetched_at", "snapshot_date")]
    rows = sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
    assert rows == sorted(
        (s.account_id, s.id, None, "STORY", None, metric, "lifetime", None,
         WORLD.media_metric_value(s.id, metric), None, "v25.0", receiver.run_id)
        for s in stories
        for metric in STORY_FIELDS
    )  # fmt: skip


async def test_batches_flush_by_size_and_by_time(tmp_path: Path) -> None:
    rows_per_story = len(STORY_FIELDS)
    async with receiving(tmp_path, batch_rows=2 * rows_per_story) as (receiver, sender):
        assert await sender.send(WORLD, STORIES[:1]) == 200
        assert receiver.statistics().rows_pending == rows_per_story
        assert await sender.send(WORLD, STORIES[1:2]) == 200
        with anyio.fail_after(10):
            await receiver.wait_for_files(1)
        assert got(tmp_path) == expected(STORIES[:2])
    async with receiving(tmp_path / "timed", interval=0.05) as (receiver, sender):
        assert await sender.send(WORLD, STORIES[2:3]) == 200
        with anyio.fail_after(10):
            await receiver.wait_for_files(1)
        assert got(tmp_path / "timed") == expected(STORIES[2:3])


def _receiver_command(
    folder: Path, webhook: str, accounts: str = ""
) -> tuple[list[str], dict[str, str]]:
    """`harvester webhook` on a free loopback port for a config in `folder` (lake: `lake`), with
    `webhook` added to its [webhook] table and `accounts` after its one account; and its env."""
    config = folder / "hook.toml"
    config.write_text(
        f"""
[graph]
app_secret_env = "HOOK_APP_SECRET"
[output]
path = "{(folder / "lake").as_posix()}"
[webhook]
verify_token_env = "HOOK_VERIFY"
{webhook}[[accounts]]
id = "17841400000000001"
token_env = "HOOK_TOKEN"
{accounts}"""
    )
    env = {**os.environ, "HOOK_APP_SECRET": APP_SECRET, "HOOK_VERIFY": VERIFY, "HOOK_TOKEN": "x"}
    command = [sys.executable, "-m", "harvester", "webhook", str(config), "--host", "127.0.0.1"]
    return [*command, "--port", "0"], env


async def test_shutdown_mid_stream_keeps_every_accepted_event(tmp_path: Path) -> None:
    """SIGTERM to `harvester webhook` while events stream in: every 200 is in the lake."""
    lake = tmp_path / "lake"
    command, env = _receiver_command(tmp_path, "batch_rows = 25\nflush_interval_seconds = 3600\n")
    async with await anyio.open_process(command, env=env) as process:
        assert process.stderr is not None
        stderr = BufferedByteReceiveStream(process.stderr)
        with anyio.fail_after(30):
            line = (await stderr.receive_until(b"\n", 4096)).decode()
        assert "listening on" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        accepted: list[Any] = []
        stop_after = len(STORIES) // 3
        stories = itertools.cycle(STORIES)  # resent stories are duplicates: still answered 200

        async def stream(session: aiohttp.ClientSession) -> None:
            """Post until the receiver is gone, so the shutdown always cuts the stream."""
            sender = WebhookSender(session, url, APP_SECRET)
            while True:
                story = next(stories)
                try:
                    status = await sender.send(WORLD, [story])
                except aiohttp.ClientError:
                    return  # refused or cut off by the shutdown: Meta would send it again
                assert status == 200
                accepted.append(story)
                if len(accepted) == stop_after:
                    process.send_signal(signal.SIGTERM)

        async with aiohttp.ClientSession() as session, anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(stream, session)
        with anyio.fail_after(30):
            code = await process.wait()
            rest = b""
            with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead):
                rest = await stderr.receive_until(b"webhook stopped", 65536)
    assert code == 0
    assert len(accepted) >= stop_after
    assert expected(accepted) <= got(lake)
    assert rest


async def test_story_values_land_exactly(tmp_path: Path) -> None:
    """Never rounded: an int stays an int in `value`, a count sent as 12.0 is the integer 12, a
    fraction goes to `value_float`; a number no column holds refuses the payload (400)."""

    def event(media_id: str, values: dict[str, Any]) -> bytes:
        change = {"field": "story_insights", "value": {"media_id": media_id, **values}}
        entry = {"id": "17841405822304914", "time": 1520383571, "changes": [change]}
        return orjson.dumps({"object": "instagram", "entry": [entry]})

    exact = event("17887498072083520", {"reach": 9_007_199_254_740_993, "replies": 12.0})
    fraction = event("17887498072083521", {"navigation": 3.5, "shares": 0.25, "views": None})
    huge = event("17887498072083522", {"reach": 2**63})  # one past int64: no column holds it
    async with receiving(tmp_path) as (receiver, sender):
        for body in (exact, fraction):
            assert await sender.post(body, signature=sign(body, APP_SECRET)) == 200
        assert await sender.post(huge, signature=sign(huge, APP_SECRET)) == 400
    assert receiver.statistics().malformed == 1
    rows = {(r["media_id"], r["metric"]): (r["value"], r["value_float"]) for r in read(tmp_path)}
    assert rows == {
        ("17887498072083520", "reach"): (9_007_199_254_740_993, None),  # 2**53 + 1, exactly
        ("17887498072083520", "replies"): (12, None),
        ("17887498072083521", "navigation"): (None, 3.5),
        ("17887498072083521", "shares"): (None, 0.25),
        ("17887498072083521", "views"): (None, None),
    }
    [parsed], _ = parse_story_insights(fraction)
    assert parsed.values == (("navigation", 3.5), ("shares", 0.25), ("views", None))


def test_signature_check() -> None:
    body = b'{"object":"instagram"}'
    good = sign(body, APP_SECRET)
    assert signature_ok(APP_SECRET.encode(), body, good)
    assert not signature_ok(APP_SECRET.encode(), body + b" ", good)
    assert not signature_ok(APP_SECRET.encode(), body, good.upper())
    assert not signature_ok(APP_SECRET.encode(), body, None)
    assert not signature_ok(APP_SECRET.encode(), body, "")


def test_documented_sample_parses() -> None:
    sample = (
        b'{"object":"instagram","entry":[{"id":"17841405822304914","time":1520383571,"changes":'
        b'[{"field":"story_insights","value":{"media_id":"17887498072083520","impressions":444,'
        b'"reach":44,"taps_forward":4,"taps_back":3,"exits":3,"replies":0}}]}]}'
    )
    [event], ignored = parse_story_insights(sample)
    assert ignored == 0
    assert (event.account_id, event.media_id) == ("17841405822304914", "17887498072083520")
    assert dict(event.values) == {
        "impressions": 444,
        "reach": 44,
        "taps_forward": 4,
        "taps_back": 3,
        "exits": 3,
        "replies": 0,
    }


@given(st.binary(max_size=200) | st.from_regex(r'\{"object":"instagram","entry":.{0,60}\}'))
def test_any_body_parses_or_is_malformed(body: bytes | str) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with suppress(MalformedPayload):
        parse_story_insights(raw)


@pytest.mark.parametrize(
    ("extra", "env", "problem"),
    [
        ("", {"S": "s"}, "[webhook].verify_token_env: required by the webhook receiver"),
        ('[webhook]\nverify_token_env = "V"\n', {"V": "v"}, "[graph].app_secret_env: required"),
        ('[webhook]\npath = "hook"\n', {}, "[webhook].path: 'hook' is not a URL path"),
        ('[webhook]\nverify_token_env = "V"\n', {"S": "s"}, "'V' is unset or empty"),
    ],
)
def test_webhook_config_errors_name_the_key(
    tmp_path: Path, extra: str, env: dict[str, str], problem: str
) -> None:
    secret = '[graph]\napp_secret_env = "S"\n' if "S" in env else ""
    text = f'{secret}[output]\npath = "lake"\n{extra}[[accounts]]\nid = "1"\ntoken_env = "T"\n'
    with pytest.raises(ConfigError) as raised:
        StoryInsightsReceiver.from_config(
            parse_config(text, source="h.toml", base_dir=tmp_path, env={**env, "T": "t"})
        )
    assert problem in str(raised.value)


async def test_the_receiver_says_instagram_login_accounts_get_no_webhooks(tmp_path: Path) -> None:
    """Meta has no story_insights webhook for Instagram Login accounts: said before listening."""
    (tmp_path / "ig.token").write_text("IGAAnotarealtoken\n")
    (tmp_path / "ig.token").chmod(0o600)
    instagram = (
        '[[accounts]]\nid = "17841400000000002"\ntoken_file = "ig.token"\nlogin = "instagram"\n'
    )
    command, env = _receiver_command(tmp_path, "", instagram)
    async with await anyio.open_process(command, env=env) as process:
        assert process.stderr is not None
        stderr = BufferedByteReceiveStream(process.stderr)
        with anyio.fail_after(30):
            note = (await stderr.receive_until(b"\n", 4096)).decode()
            listening = (await stderr.receive_until(b"\n", 4096)).decode()
        process.send_signal(signal.SIGTERM)
        await process.wait()
    assert note == (
        "harvester: note: Meta sends no story_insights webhooks for Instagram Login accounts "
        "(17841400000000002); their stories' insights come from `harvester run` only"
    )
    assert "listening on" in listening
