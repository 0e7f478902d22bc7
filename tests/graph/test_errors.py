"""The Graph error taxonomy: real bodies, Meta's wordings, throttles, broken replies, totality."""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import harvester.graph.errors as errors_module
from harvester.graph.errors import (
    AccountFatal,
    AppSecretRejected,
    GraphError,
    InvalidRequest,
    MetricUnsupported,
    NotEnoughViewers,
    NothingWorks,
    ObjectUnavailable,
    PermissionDenied,
    PreConversion,
    Retriable,
    Skippable,
    Throttled,
    TokenInvalid,
    TransientServer,
    TransportError,
    UnknownVersion,
    classify,
    decode_reply,
    scrub,
    valid_metrics,
)

AIRBYTE = (
    "airbyte/airbyte-integrations/connectors/source-instagram/unit_tests/resource/http/response"
)


def envelope(code: Any, message: str = "", subcode: Any = None, **extra: Any) -> bytes:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    return orjson.dumps({"error": error})


# -- the recorded real bodies ----------------------------------------------------------------------

# path under the shared fixtures -> (class, code, subcode, fbtrace_id)
RECORDED = [
    (
        f"{AIRBYTE}/media_insights_for_error_posted_before_business.json",
        PreConversion,
        100,
        2108006,
    ),
    (f"{AIRBYTE}/media_insights_for_error_with_wrong_permissions.json", ObjectUnavailable, 100, 33),
    (
        f"{AIRBYTE}/media_insights_for_error_with_wrong_permissions_code_10.json",
        PermissionDenied,
        10,
        None,
    ),
    (f"{AIRBYTE}/user_insights_for_error_code_10.json", PermissionDenied, 10, None),
    (f"{AIRBYTE}/user_insights_for_error_code_100_subcode_33.json", ObjectUnavailable, 100, 33),
    (f"{AIRBYTE}/user_insights_for_error_subcode_2108006.json", PreConversion, 100, 2108006),
    ("python-facebook/testdata/base/error_data.json", ObjectUnavailable, 100, None),
    ("python-facebook/testdata/error.json", InvalidRequest, 100, None),
]


@pytest.mark.parametrize(("path", "cls", "code", "subcode"), RECORDED)
def test_recorded_error_bodies(
    shared_fixtures: Path, path: str, cls: type[GraphError], code: int, subcode: int | None
) -> None:
    body = (shared_fixtures / path).read_bytes()
    error = classify(400, {}, body)
    assert type(error) is cls
    assert (error.status, error.code, error.subcode) == (400, code, subcode)
    assert error.fbtrace_id == orjson.loads(body)["error"]["fbtrace_id"]
    with pytest.raises(cls):
        decode_reply(400, {}, body)
    with pytest.raises(cls):  # an envelope fails the reply even with a 200
        decode_reply(200, {}, body)


def test_recorded_airbyte_error_files_are_all_covered(shared_fixtures: Path) -> None:
    on_disk = {p.name for p in (shared_fixtures / AIRBYTE).glob("*error*.json")}
    assert on_disk == {Path(path).name for path, *_ in RECORDED if path.startswith(AIRBYTE)}


def test_pre_conversion_message_keeps_the_user_title(shared_fixtures: Path) -> None:
    body = (shared_fixtures / RECORDED[0][0]).read_bytes()
    assert classify(400, {}, body).message == (
        "Invalid parameter: Media posted before business account conversion"
    )


# -- Meta's wordings -------------------------------------------------------------------------------

MEDIA_UNSUPPORTED = (
    "(#100) The Media Insights API does not support the {} metric for this media product type."
)
ACCOUNT_REMOVED = (
    "(#100) Starting from version 22 and above, the {} metric is no longer supported for the "
    "queried user. Please refer to the documentation at "
    "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a list of "
    "supported metrics."
)


@pytest.mark.parametrize(
    ("message", "requested", "metric"),
    [
        (MEDIA_UNSUPPORTED.format("impressions"), (), "impressions"),
        (MEDIA_UNSUPPORTED.format("carousel_album_reach"), ("reach",), "carousel_album_reach"),
        (ACCOUNT_REMOVED.format("impressions"), (), "impressions"),
        (
            "(#100) metric[2] must be one of the following values: reach, saved, likes",
            ("reach", "saved", "engagement"),
            "engagement",
        ),
        ("(#100) metric[0] must be one of the following values: reach", ("plays",), "plays"),
        ("(#100) metric[5] must be one of the following values: reach", ("plays",), None),
        ("(#100) metric[1] must be one of the following values: reach", (), None),
    ],
)
def test_metric_unsupported(message: str, requested: tuple[str, ...], metric: str | None) -> None:
    error = classify(400, {}, envelope(100, message), requested_metrics=requested)
    assert isinstance(error, MetricUnsupported)
    assert error.metric == metric
    assert isinstance(error, Skippable)
    assert not error.is_transient


@pytest.mark.parametrize(
    ("code", "subcode", "message", "cls"),
    [
        (
            100,
            None,
            "(#100) Insights are not available for media in a carousel album",
            ObjectUnavailable,
        ),
        (10, None, "(#10) Not enough viewers for the media to show insights", NotEnoughViewers),
        (10, None, "(#10) Application does not have permission for this action", PermissionDenied),
        (
            100,
            None,
            "(#100) There cannot be more than 30 days (2592000 s) between since and until",
            InvalidRequest,
        ),
        (100, None, "(#100) Param since must be a unix timestamp", InvalidRequest),
        (100, 33, "Unsupported get request", ObjectUnavailable),
        (100, 2108006, "Invalid parameter", PreConversion),
        (1, None, "An unknown error occurred", TransientServer),
        (2, None, "Service temporarily unavailable", TransientServer),
        (190, 463, "Error validating access token: Session has expired", TokenInvalid),
        (190, 467, "Error validating access token: The user has not authorized", TokenInvalid),
        (190, None, "Invalid OAuth access token.", TokenInvalid),
        (190, 999, "Malformed access token", TokenInvalid),
        (102, None, "Session key invalid", TokenInvalid),
        (200, None, "(#200) Permissions error", PermissionDenied),
        (299, None, "(#299) Requires permission", PermissionDenied),
        (300, None, "(#300) something else", InvalidRequest),
        (12345, None, "never seen", InvalidRequest),
        # A wrong app secret is an authentication failure, never a refused metric or breakdown.
        (100, None, "Invalid appsecret_proof provided in the API argument", AppSecretRejected),
        (
            100,
            None,
            "(#100) API calls from the server require an appsecret_proof argument",
            AppSecretRejected,
        ),
        (190, None, "Invalid appsecret_proof provided in the API argument", AppSecretRejected),
        (2500, None, "Unknown path components: /v99.0/", UnknownVersion),
        # Without the request's path, a named path may be a wrong edge as well as a wrong version.
        (2500, None, "Unknown path components: /17841400000000001/medias", InvalidRequest),
    ],
)
def test_envelope_codes(
    code: int, subcode: int | None, message: str, cls: type[GraphError]
) -> None:
    error = classify(400, {}, envelope(code, message, subcode, fbtrace_id="Abc"))
    assert type(error) is cls
    assert (error.code, error.subcode, error.fbtrace_id, error.status) == (
        code,
        subcode,
        "Abc",
        400,
    )


@pytest.mark.parametrize(
    ("path", "message", "cls"),
    [
        # Meta's words for an unknown version: the path after it (arsduo/koala#611).
        ("/v99.0/17841400000000001/media", "/17841400000000001/media", UnknownVersion),
        ("/v2.80/IUPATDC35/feed", "/IUPATDC35/feed", UnknownVersion),
        ("/2.11/me/feed", "/me/feed", UnknownVersion),
        ("/v99.0/debug_token", "/debug_token", UnknownVersion),
        ("/v99.0/", "/v99.0/", UnknownVersion),
        # A wrong edge under a good version names the edge alone.
        ("/v21.0/17841400000000001/medias", "/medias", InvalidRequest),
        ("/v21.0/17841400000000001/insights/x", "/x", InvalidRequest),
        ("/v21.0/17841400000000001/media", "/17841400000000001/medias", InvalidRequest),
    ],
)
def test_an_unknown_version_is_told_by_the_requested_path(
    path: str, message: str, cls: type[GraphError]
) -> None:
    body = envelope(2500, f"Unknown path components: {message}")
    assert type(classify(400, {}, body, requested_path=path)) is cls
    with pytest.raises(cls) as raised:
        decode_reply(400, {}, body, requested_path=path)
    assert type(raised.value) is cls


@pytest.mark.parametrize("subcode", [458, 459, 460, 463, 464, 467, 492])
def test_every_token_subcode_is_account_fatal(subcode: int) -> None:
    error = classify(400, {}, envelope(190, "Error validating access token", subcode))
    assert isinstance(error, TokenInvalid)
    assert isinstance(error, AccountFatal)


def test_is_transient_flag_makes_an_unknown_code_retriable() -> None:
    error = classify(400, {}, envelope(12345, "odd", is_transient=True))
    assert type(error) is TransientServer
    assert error.is_transient


def test_unknown_code_with_a_5xx_is_transient() -> None:
    assert type(classify(503, {}, envelope(12345, "odd"))) is TransientServer


def test_codes_given_as_strings_are_understood() -> None:
    error = classify(400, {}, envelope("100", "Invalid parameter", "2108006"))
    assert type(error) is PreConversion
    assert (error.code, error.subcode) == (100, 2108006)


# -- throttling ------------------------------------------------------------------------------------


def buc(regain_minutes: float, account: str = "17841400000000001") -> dict[str, str]:
    usage = {account: [{"type": "instagram", "call_count": 100, "total_cputime": 5, "total_time": 9,
                        "estimated_time_to_regain_access": regain_minutes}]}  # fmt: skip
    return {"X-Business-Use-Case-Usage": orjson.dumps(usage).decode()}


@pytest.mark.parametrize(
    ("code", "scope"),
    [
        (4, "app"),
        (17, "user"),
        (32, "page"),
        (613, "account"),
        (341, "app"),
        (80001, "page"),
        (80002, "account"),
        (368, "user"),
    ],
)
def test_throttle_scopes(code: int, scope: str) -> None:
    error = classify(400, buc(3), envelope(code, "limit"))
    assert isinstance(error, Throttled)
    assert isinstance(error, Retriable)
    assert error.is_transient
    assert error.scope == scope
    assert error.retry_after == 180.0


def test_regain_minutes_scale_with_minute_seconds() -> None:
    error = classify(400, buc(12), envelope(80002, "limit"), minute_seconds=0.5)
    assert isinstance(error, Throttled)
    assert error.retry_after == 6.0


def test_retry_after_header_is_seconds_and_the_later_delay_wins() -> None:
    headers = {"retry-after": "30", **buc(1)}
    error = classify(400, headers, envelope(4, "Application request limit reached"))
    assert isinstance(error, Throttled)
    assert error.retry_after == 60.0
    error = classify(400, {"Retry-After": "90"}, envelope(4, "limit"))
    assert isinstance(error, Throttled)
    assert error.retry_after == 90.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        buc(0),
        {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"},
        {"Retry-After": "-3"},
        {"X-Business-Use-Case-Usage": "{not json"},
        {"Retry-After": "nan"},
    ],
)
def test_throttle_without_a_usable_delay_leaves_backoff_to_retry(headers: dict[str, str]) -> None:
    error = classify(400, headers, envelope(17, "User request limit reached"))
    assert isinstance(error, Throttled)
    assert error.retry_after is None


def test_a_368_block_without_a_delay_pauses_long() -> None:
    error = classify(400, {}, envelope(368, "Temporarily blocked"), minute_seconds=1.0)
    assert isinstance(error, Throttled)
    assert error.retry_after == 60.0


def test_http_429_without_envelope_is_an_app_throttle() -> None:
    error = classify(429, {"Retry-After": "7"}, b"Too Many Requests")
    assert isinstance(error, Throttled)
    assert (error.scope, error.retry_after, error.status) == ("app", 7.0, 429)


# -- replies without an envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "body", "cls"),
    [
        (
            502,
            {"Content-Type": "text/html"},
            b"<html><body>Bad Gateway</body></html>",
            TransientServer,
        ),
        (200, {}, b"<!DOCTYPE html><html>proxy login</html>", TransientServer),
        (
            403,
            {"content-type": "text/html; charset=utf-8"},
            b"<html>denied</html>",
            TransientServer,
        ),
        (200, {}, b'{"data":[{"name":"reach","values":[{"val', TransientServer),
        (200, {}, b"", TransientServer),
        (400, {}, b'{"error":{"message":"(#100) Inval', TransientServer),
        (500, {}, b"", TransientServer),
        (503, {}, b'{"status":"down"}', TransientServer),
        (408, {}, b"", TransientServer),
        (404, {}, b"Not Found", InvalidRequest),
        (400, {}, b'{"oops":true}', InvalidRequest),
        (200, {}, b'{"data":[]}', InvalidRequest),  # classify was handed a good reply
    ],
)
def test_replies_without_an_envelope(
    status: int, headers: dict[str, str], body: bytes, cls: type[GraphError]
) -> None:
    error = classify(status, headers, body)
    assert type(error) is cls
    assert error.status == status
    assert error.code is None


def test_string_error_member_is_an_envelope() -> None:
    error = classify(400, {}, b'{"error":"invalid_request"}')
    assert type(error) is InvalidRequest
    assert error.message == "invalid_request"


# -- decode_reply ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"data": []},
        {"data": [{"name": "reach", "period": "lifetime", "values": [{"value": 5}]}]},
        [{"code": 200, "body": "{}"}, None],
        {"error": None, "id": "1"},
    ],
)
def test_decode_reply_returns_good_json(data: Any) -> None:
    assert decode_reply(200, {}, orjson.dumps(data)) == data


def test_decode_reply_raises_for_a_non_2xx_json_body() -> None:
    with pytest.raises(TransientServer):
        decode_reply(500, {}, b'{"data":[]}')


def test_decode_reply_resolves_metric_index_with_requested_metrics() -> None:
    body = envelope(100, "(#100) metric[1] must be one of the following values: reach")
    with pytest.raises(MetricUnsupported) as caught:
        decode_reply(400, {}, body, requested_metrics=["reach", "engagement"])
    assert caught.value.metric == "engagement"


# -- token hygiene ---------------------------------------------------------------------------------

TOKEN = "EAAJZBkz1x2ZBDqlZCOpQ7ZAtokenvalue1234"


@pytest.mark.parametrize(
    "text",
    [
        f"https://graph.facebook.com/v21.0/1/insights?access_token={TOKEN}&metric=reach",
        f"bad token {TOKEN}",
        f"Authorization: Bearer {TOKEN}",
        f"Authorization: OAuth {TOKEN}",
        f'{{"access_token": "{TOKEN}"}}',
        f"next=https%3A%2F%2Fgraph%3Faccess_token%3D{TOKEN}",
        "appsecret_proof=0123456789abcdef0123456789abcdef&x=1",
    ],
)
def test_scrub_removes_tokens(text: str) -> None:
    cleaned = scrub(text)
    assert TOKEN not in cleaned
    assert "0123456789abcdef" not in cleaned
    assert "***" in cleaned


# Pieces a secret is made of, in cases and lookalikes `(?i)` folds (U+017F is an "s", U+212A a
# "k"): each example is one pattern's shortest match.
_LONG_S, _KELVIN = "\u017f", "\u212a"
_PIECES = st.sampled_from(
    ["access_token", "ACCESS_TOKEN", "appsecret_proof", f"client_{_LONG_S}ecret",
     f"fb_exchange_to{_KELVIN}en", "input_token", "EAA", "IGQV", "IGAA", "Bearer ", "OAuth ",
     "bearer ", "=", "%3D", ': "', "abcdefgh12", "\u0130", "\u00df", " ", "&"]
)  # fmt: skip


@settings(max_examples=400)
@given(st.lists(_PIECES | st.text(max_size=4), max_size=5).map("".join))
@example("Bearer abcdefgh12")
@example("OAuth abcdefgh12")
@example("IGQVabcdefgh12")
@example("x IGAAabcdefgh12")
@example("EAAabcdefgh12")
@example("input_token=x")
@example(f"client_{_LONG_S}ecret: 1")
@example("appsecret_proof%3D1")
def test_scrub_skips_only_texts_without_a_secret(text: str) -> None:
    """scrub returns a text as it is, without running its patterns, when none of their words is
    in it: the text must then hold nothing a pattern would mask."""
    if scrub(text) is text:
        patterns = (
            errors_module._SECRET_PARAM,
            errors_module._TOKEN_SHAPE,
            errors_module._AUTH_HEADER,
        )
        assert not any(pattern.search(text) for pattern in patterns)


def test_scrub_keeps_ordinary_words() -> None:
    text = "(#190) OAuthException: Error validating access token: Session has expired"
    assert scrub(text) == text


def test_error_text_is_token_free() -> None:
    body = envelope(
        190,
        f"Invalid token {TOKEN}",
        463,
        error_user_msg=f"see https://x/?access_token={TOKEN}",
        fbtrace_id="T1",
    )
    error = classify(400, {}, body)
    for text in (error.message, str(error), repr(error), str(error.args)):
        assert TOKEN not in text
    assert "EAA" not in error.message


def test_errors_survive_pickling_with_their_fields() -> None:
    error = classify(400, buc(2), envelope(80002, "limit", fbtrace_id="F"))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is Throttled
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)


def test_authentication_failures_stop_the_account() -> None:
    for code, subcode, message in [
        (190, None, "Invalid OAuth access token - Cannot parse access token"),
        (190, 463, "Error validating access token: Session has expired"),
        (102, None, "Session key invalid"),
        (100, None, "Invalid appsecret_proof provided in the API argument"),
    ]:
        error = classify(400, {}, envelope(code, message, subcode))
        assert isinstance(error, AccountFatal), (code, message)
        assert not isinstance(error, MetricUnsupported | InvalidRequest | Skippable)


def test_new_errors_survive_pickling_with_their_fields() -> None:
    for error in (
        TransportError("ClientConnectorDNSError: no", reason="dns"),
        NothingWorks("nothing works", cause="dns", host="h.invalid", reason="host unreachable"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), copy.__dict__) == (type(error), error.__dict__)


def test_transport_error_from_exception() -> None:
    error = TransportError.from_exception(ConnectionResetError(f"reset at /x?access_token={TOKEN}"))
    assert error.message == "ConnectionResetError: reset at /x?access_token=***"
    assert error.label == "TransportError ConnectionResetError"
    assert TransportError.from_exception(TimeoutError()).message == "TimeoutError"


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (
            classify(400, {}, envelope(100, "Invalid parameter", 2108006)),
            "PreConversion 100/2108006",
        ),
        (classify(400, {}, envelope(4, "limit")), "Throttled 4"),
        (classify(502, {}, b"<html></html>"), "TransientServer HTTP 502"),
        (GraphError("plain"), "GraphError"),
    ],
)
def test_labels_are_low_cardinality(error: GraphError, label: str) -> None:
    assert error.label == label


def test_transport_error_is_retriable() -> None:
    error = TransportError("read timeout after 30.0 s")
    assert isinstance(error, Retriable)
    assert error.is_transient
    assert (error.status, error.code, str(error)) == (None, None, "read timeout after 30.0 s")


# -- totality --------------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    ["X-App-Usage", "x-business-use-case-usage", "Retry-After", "Content-Type", "X-Other"]
)
HEADER_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["text/html", "0", "-1", "1e400", "NaN", "{}", '{"1":[]}', "[1,2]", "5"]),
)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)
STATUSES = st.one_of(st.integers(-1, 1000), st.sampled_from([200, 400, 403, 429, 500, 502, 503]))
INT64 = st.integers(-(2**63), 2**63 - 1)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
CODES = st.one_of(
    st.sampled_from([1, 2, 4, 10, 17, 32, 100, 102, 190, 200, 341, 368, 613, 80001, 80002]),
    INT64,
    st.text(max_size=6),
    st.none(),
    st.booleans(),
)
ENVELOPES = st.builds(
    lambda code, sub, message, extra: orjson.dumps(
        {"error": {"code": code, "error_subcode": sub, "message": message, **extra}}
    ),
    CODES,
    st.one_of(st.none(), INT64, st.sampled_from([33, 463, 2108006]), st.text(max_size=5)),
    st.one_of(
        st.text(max_size=80),
        st.sampled_from(
            [
                "(#100) metric[3] must be one of the following values: reach",
                "(#100) metric[99999999] must be one of",
                MEDIA_UNSUPPORTED.format("x"),
                "(#10) Not enough viewers for the media to show insights",
            ]
        ),
    ),
    st.dictionaries(
        st.sampled_from(["is_transient", "fbtrace_id", "error_user_title", "error_user_msg"]),
        JSON,
        max_size=3,
    ),
)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b'{"error":{"code":1e400}}', b'{"error":{"code":99999999999999999999999}}']),
    JSON.map(orjson.dumps),
    ENVELOPES,
    ENVELOPES.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n])),
)


@settings(max_examples=400)
@given(status=STATUSES, headers=HEADERS, body=BODIES, requested=st.lists(st.text(max_size=5)))
def test_classify_is_total(
    status: int, headers: dict[str, str], body: bytes, requested: list[str]
) -> None:
    error = classify(status, headers, body, requested_metrics=requested)
    assert isinstance(error, GraphError)
    assert isinstance(error.message, str)
    if isinstance(error, Throttled) and error.retry_after is not None:
        assert 0 < error.retry_after < float("inf")
    str(error)
    repr(error)


@settings(max_examples=400)
@given(status=STATUSES, headers=HEADERS, body=BODIES)
def test_decode_reply_is_total(status: int, headers: dict[str, str], body: bytes) -> None:
    with contextlib.suppress(GraphError):
        decode_reply(status, headers, body)


# -- Meta's list of valid metric names -------------------------------------------------------------

NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True), max_size=40)


@settings(max_examples=300)
@given(names=NAMES, index=st.integers(0, 999), period=st.booleans())
def test_valid_metrics_reads_back_the_list_meta_writes(
    names: list[str], index: int, period: bool
) -> None:
    message = f"(#100) metric[{index}] must be one of the following values: {', '.join(names)}"
    assert valid_metrics(message + ("." if period else "")) == tuple(dict.fromkeys(names))


@settings(max_examples=300)
@given(names=st.lists(NAMES.filter(bool).map(tuple), max_size=1), requested=st.lists(NAMES))
def test_the_error_carries_meta_list_in_full(
    names: list[tuple[str, ...]], requested: list[list[str]]
) -> None:
    listed = names[0] if names else ("reach",)
    asked = requested[0] if requested else []
    # Longer than the message an error keeps: the list is read from the whole reply.
    listed = listed * 200
    message = f"(#100) metric[0] must be one of the following values: {', '.join(listed)}"
    error = classify(400, {}, envelope(100, message), requested_metrics=asked)
    assert isinstance(error, MetricUnsupported)
    assert error.valid == tuple(dict.fromkeys(listed))
    assert error.metric == (asked[0] if asked else None)
    assert pickle.loads(pickle.dumps(error)).valid == error.valid


@settings(max_examples=500)
@given(text=st.text(max_size=200))
def test_valid_metrics_is_total_and_yields_only_names(text: str) -> None:
    for message in (text, f"metric[0] must be one of the following values: {text}"):
        found = valid_metrics(message)
        assert found is None or all(n.replace("_", "").isalnum() and n.isascii() for n in found)


@pytest.mark.parametrize(
    ("message", "valid"),
    [
        ("(#100) metric[0] must be one of the following values: reach, saved", ("reach", "saved")),
        ("(#100) metric[3] must be one of the following values: reach", ("reach",)),
        ("(#100) metric[0] must be one of the following values: ", ()),
        ("(#100) metric[99999999] must be one of", None),  # no list at all
        ("(#100) metric[0] must be one of the following values: reach, <b>x</b>", None),
        ("(#100) metric[0] must be one of the following values: _", None),  # hypothesis found it
        ("(#100) breakdown[0] must be one of the following values: age, city", None),
        (MEDIA_UNSUPPORTED.format("impressions"), None),
    ],
)
def test_valid_metrics_by_example(message: str, valid: tuple[str, ...] | None) -> None:
    assert valid_metrics(message) == valid
    error = classify(400, {}, envelope(100, message), requested_metrics=("plays",))
    assert getattr(error, "valid", None) == valid
