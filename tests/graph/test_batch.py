"""Batch codec: form encoding, reply decoding (total on any input), and real simulator replies."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.graph.batch import (
    FORM_CONTENT_TYPE,
    MAX_OPS,
    BatchOp,
    OpResult,
    decode_batch,
    encode_batch,
    encode_batch_body,
    insights_op,
)
from harvester.graph.errors import (
    MalformedReply,
    MetricUnsupported,
    ObjectUnavailable,
    PreConversion,
    decode_reply,
)
from harvester.graph.replies import parse_insights
from harvester.simulator import FaultSettings, SimulatorSettings, run_simulator

# -- encode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "relative_url"),
    [
        (insights_op("17900", ["reach", "saved"]), "17900/insights?metric=reach,saved"),
        (
            insights_op("17900", ["profile_activity"], breakdown="action_type"),
            "17900/insights?metric=profile_activity&breakdown=action_type",
        ),
        (BatchOp("/17900"), "17900"),
        (BatchOp("17900", (("fields", "id,media_type"),)), "17900?fields=id,media_type"),
        (BatchOp("1/insights", (("metric", "a b&c=d"),)), "1/insights?metric=a%20b%26c%3Dd"),
        (BatchOp("a b/c", (("k/", "v/w"),)), "a%20b/c?k%2F=v%2Fw"),
    ],
)
def test_relative_url(op: BatchOp, relative_url: str) -> None:
    assert op.relative_url == relative_url


def test_encode_batch_fields() -> None:
    ops = [insights_op("1", ["reach"]), insights_op("2", ["reach", "saved"])]
    form = encode_batch(ops, include_headers=False)
    assert set(form) == {"batch", "include_headers"}
    assert form["include_headers"] == "false"
    assert orjson.loads(form["batch"]) == [
        {"method": "GET", "relative_url": "1/insights?metric=reach"},
        {"method": "GET", "relative_url": "2/insights?metric=reach,saved"},
    ]
    assert encode_batch(ops, include_headers=True)["include_headers"] == "true"


@pytest.mark.parametrize("count", [0, MAX_OPS + 1])
def test_encode_batch_size_limits(count: int) -> None:
    with pytest.raises(ValueError, match="batch"):
        encode_batch([insights_op("1", ["reach"])] * count, include_headers=True)


def test_encode_batch_takes_exactly_max_ops() -> None:
    form = encode_batch([insights_op("1", ["reach"])] * MAX_OPS, include_headers=True)
    assert len(orjson.loads(form["batch"])) == MAX_OPS


@pytest.mark.parametrize("key", ["access_token", "appsecret_proof", "appsecret_time"])
def test_encode_batch_refuses_credentials(key: str) -> None:
    with pytest.raises(ValueError, match="credential"):
        encode_batch([BatchOp("1", ((key, "EAAsecret"),))], include_headers=True)


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),
            st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=MAX_OPS,
    )
)
def test_encode_round_trips_through_url_parsing(ops: list[tuple[str, list[str]]]) -> None:
    built = [insights_op(media_id, metrics) for media_id, metrics in ops]
    entries = orjson.loads(encode_batch(built, include_headers=True)["batch"])
    assert len(entries) == len(ops)
    for (media_id, metrics), entry in zip(ops, entries, strict=True):
        split = urlsplit(entry["relative_url"])
        assert unquote(split.path) == f"{media_id}/insights".lstrip("/")
        assert parse_qsl(split.query, keep_blank_values=True) == [("metric", ",".join(metrics))]


CREDENTIALS = {"access_token", "appsecret_proof", "appsecret_time"}
param_keys = st.text(max_size=8).filter(lambda key: key not in CREDENTIALS)
any_ops = st.builds(
    BatchOp,
    st.text(max_size=12),
    st.lists(st.tuples(param_keys, st.text(max_size=8)), max_size=3).map(tuple),
)


@given(st.lists(any_ops, min_size=1, max_size=MAX_OPS), st.booleans())
def test_encode_batch_body_is_the_urlencoded_form(
    ops: list[BatchOp], include_headers: bool
) -> None:
    body = encode_batch_body(ops, include_headers=include_headers)
    assert body == urlencode(encode_batch(ops, include_headers=include_headers)).encode()


def test_encode_batch_body_checks_like_encode_batch() -> None:
    assert FORM_CONTENT_TYPE == "application/x-www-form-urlencoded"
    with pytest.raises(ValueError, match="at most"):
        encode_batch_body([insights_op("1", ["reach"])] * (MAX_OPS + 1), include_headers=False)
    with pytest.raises(ValueError, match="credential"):
        encode_batch_body([BatchOp("1", (("access_token", "x"),))], include_headers=False)


# -- decode ----------------------------------------------------------------------------------------

GOOD_BODY = '{"data":[{"name":"reach","period":"lifetime","values":[{"value":5}]}]}'
USAGE = [{"name": "X-App-Usage", "value": '{"call_count":1}'}]


@pytest.mark.parametrize(
    ("reply", "n_ops", "expected"),
    [
        (
            [{"code": 200, "headers": USAGE, "body": GOOD_BODY}],
            1,
            [OpResult(200, {"X-App-Usage": '{"call_count":1}'}, GOOD_BODY.encode())],
        ),
        ([None, {"code": 200, "body": "{}"}], 2, [None, OpResult(200, {}, b"{}")]),
        ([{"code": 400, "body": None}], 1, [OpResult(400, {}, b"")]),
        ([{"code": 500, "headers": [], "body": ""}], 1, [OpResult(500, {}, b"")]),
        ([], 0, []),
        ([None, None], 2, [None, None]),
    ],
)
def test_decode_batch_table(reply: object, n_ops: int, expected: list[OpResult | None]) -> None:
    assert decode_batch(reply, n_ops) == expected


@pytest.mark.parametrize(
    ("reply", "n_ops", "problem"),
    [
        ({"error": {"code": 100}}, 1, "not a list"),
        ("[]", 0, "not a list"),
        ([None], 2, "1 entries for 2 ops"),
        ([None, None], 1, "2 entries for 1 ops"),
        ([1], 1, "entry 0 is not an object"),
        ([{"body": "{}"}], 1, "entry 0 has no integer code"),
        ([{"code": "200", "body": "{}"}], 1, "no integer code"),
        ([{"code": True, "body": "{}"}], 1, "no integer code"),
        ([{"code": 200, "body": {"data": []}}], 1, "body is not a string"),
        ([{"code": 200, "body": "{}", "headers": {"a": "b"}}], 1, "headers is not a list"),
        ([{"code": 200, "body": "{}", "headers": [{"name": "a"}]}], 1, "name/value"),
    ],
)
def test_decode_batch_malformed(reply: object, n_ops: int, problem: str) -> None:
    with pytest.raises(MalformedReply, match=problem):
        decode_batch(reply, n_ops)


def test_malformed_message_scrubs_tokens() -> None:
    with pytest.raises(MalformedReply) as caught:
        decode_batch(["https://x/?access_token=EAAsecrettoken123"], 1)
    assert "EAAsecret" not in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
entries = st.none() | st.fixed_dictionaries(
    {"code": st.integers(100, 599) | json_values},
    optional={
        "body": st.text(max_size=20) | json_values,
        "headers": st.lists(
            st.fixed_dictionaries({"name": st.text(max_size=5), "value": st.text(max_size=5)})
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)


@given(st.lists(entries, max_size=6) | json_values, st.integers(-1, 7))
def test_decode_batch_is_total(reply: object, n_ops: int) -> None:
    try:
        results = decode_batch(reply, n_ops)
    except MalformedReply:
        return
    assert isinstance(reply, list)
    assert len(results) == n_ops == len(reply)
    for entry, result in zip(reply, results, strict=True):
        assert (result is None) == (entry is None)
        if result is not None:
            assert result.status == entry["code"]
            assert isinstance(result.body, bytes)


@given(
    st.lists(
        st.none()
        | st.builds(
            OpResult,
            st.integers(100, 599),
            st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
            st.text(max_size=30).map(str.encode),
        ),
        max_size=MAX_OPS,
    )
)
def test_decode_inverts_meta_rendering(results: list[OpResult | None]) -> None:
    rendered = [
        None
        if r is None
        else {
            "code": r.status,
            "headers": [{"name": k, "value": v} for k, v in r.headers.items()],
            "body": r.body.decode(),
        }
        for r in results
    ]
    reply = orjson.loads(orjson.dumps(rendered))
    assert decode_batch(reply, len(results)) == results


# -- against the simulator's batch endpoint --------------------------------------------------------

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


async def _post_batch(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    ops: list[BatchOp],
    *,
    include_headers: bool = True,
    prebuilt_body: bool = True,
) -> list[OpResult | None]:
    """POST the batch with the token in the header: as a prebuilt body or as aiohttp's form."""
    headers = {"Authorization": f"Bearer {token}"}
    data: bytes | dict[str, str]
    if prebuilt_body:
        data = encode_batch_body(ops, include_headers=include_headers)
        headers["Content-Type"] = FORM_CONTENT_TYPE
    else:
        data = encode_batch(ops, include_headers=include_headers)
    async with session.post(f"{base_url}/v25.0/", data=data, headers=headers) as resp:
        assert resp.status == 200
        return decode_batch(orjson.loads(await resp.read()), len(ops))


@pytest.mark.anyio
async def test_simulator_replies_round_trip_with_header_token() -> None:
    """The header token is the fallback of every op; per-op errors decode to the taxonomy."""
    settings = SimulatorSettings(seed=7, accounts=2, media_per_account=60, now=NOW)
    async with run_simulator(settings) as sim, aiohttp.ClientSession() as session:
        account = sim.world.accounts[0]
        listed = [m for m in sim.world.iter_media(account.id) if not m.is_child]
        media = listed[:40] + listed[-2:]  # the oldest media predate the business conversion
        assert {"deleted", "pre_conversion"} <= {m.trouble for m in media}
        ops = [insights_op(m.id, ["reach", "saved"]) for m in media]
        ops.append(insights_op(media[0].id, ["engagement"]))  # removed in v18: code 100
        results = await _post_batch(session, sim.base_url, account.token, ops)
        for m, result in zip(media, results, strict=False):
            assert result is not None
            assert "X-Business-Use-Case-Usage" in result.headers
            if m.trouble == "deleted":
                with pytest.raises(ObjectUnavailable):
                    decode_reply(result.status, result.headers, result.body)
            elif m.trouble == "pre_conversion":
                with pytest.raises(PreConversion):
                    decode_reply(result.status, result.headers, result.body)
            else:
                data = decode_reply(result.status, result.headers, result.body)
                values = parse_insights(data, ["reach", "saved"])
                expected_reach = None if m.trouble == "no_data" else sim.world.value_of(m, "reach")
                assert ("reach", "lifetime", None, expected_reach, None) in values
        last = results[-1]
        assert last is not None
        with pytest.raises(MetricUnsupported) as caught:
            decode_reply(last.status, last.headers, last.body, requested_metrics=["engagement"])
        assert caught.value.metric == "engagement"
        stats = sim.stats()
        assert stats["by_edge"]["batch_ops"] == len(ops)
        assert stats["per_account"][account.id] == len(ops)


@pytest.mark.anyio
async def test_simulator_null_entries_decode_to_none() -> None:
    faults = FaultSettings(batch_null=0.4, seed=5)
    settings = SimulatorSettings(
        seed=7, accounts=1, media_per_account=60, now=NOW, troubles=False, faults=faults
    )
    async with run_simulator(settings) as sim, aiohttp.ClientSession() as session:
        account = sim.world.accounts[0]
        media = [m for m in sim.world.iter_media(account.id) if not m.is_child][:MAX_OPS]
        ops = [insights_op(m.id, ["reach"]) for m in media]
        results = await _post_batch(
            session, sim.base_url, account.token, ops, include_headers=False, prebuilt_body=False
        )
        nulls = [i for i, r in enumerate(results) if r is None]
        assert len(nulls) == sim.stats()["faults"]["batch_null"]
        assert 0 < len(nulls) < len(ops)
        for result in results:
            if result is not None:
                assert result.headers == {}
                assert decode_reply(result.status, result.headers, result.body)["data"]
