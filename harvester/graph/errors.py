"""The Graph error taxonomy: every failed reply becomes one class saying what the caller must do.

This is the only module that interprets Graph error codes. The client hands every reply to
`decode_reply` (or a failed one to `classify`); everything downstream branches on classes, never
on codes. Every error carries status, code, subcode, fbtrace_id, message (token-free), is_transient.

    GraphError
     +-- Retriable                  try the same request again later
     |    +-- Throttled             rate limited: pause `scope` for `retry_after` s (or back off)
     |    +-- TransientServer       codes 1/2, is_transient, 5xx, proxy HTML pages, truncated JSON
     |    +-- TransportError        timeouts, resets, dropped connections (raised by the client)
     |    +-- NoAnswer              a batch op Meta left unanswered (`null`): ask it again alone
     +-- Skippable                  give up on this one object, write an error row, go on
     |    +-- MetricUnsupported     code 100 naming a metric: retry the media without `metric`
     |                              (`valid`: the names Meta listed as valid, when it did)
     |    +-- ObjectUnavailable     100/33: deleted or unreadable object
     |    +-- PreConversion         100/2108006: posted before the business-account conversion
     |    +-- NotEnoughViewers      code 10 on a story with fewer than 5 viewers
     |    +-- ProfileUnavailable    110/2207013: business discovery of a username that is unknown
     |                              or not professional (that competitor only, not the asking
     |                              account, whose token worked)
     +-- AccountFatal               stop every call for this account (and its token)
     |    +-- TokenInvalid          190 (expired, invalidated, password changed, checkpoint ...)
     |    +-- PermissionDenied      code 10 (other messages), 200-299
     |    +-- AppSecretRejected     100 or 190 naming appsecret_proof: the configured app secret
     |                              is wrong (every account's calls fail alike)
     |    +-- WrongAccount          an Instagram Login token belongs to another account than the
     |                              config's id (raised by `graph.instagram`, not by a reply)
     +-- InvalidRequest             our request is wrong: other code 100s (e.g. > 30 days), unknown
     |    |                         codes with a 4xx status; fix the request, do not retry as is
     |    +-- UnknownVersion        2500 "Unknown path components: /<path after the version>"
     |                              (or "/v99.0/" for the bare version): no such api_version
     +-- MalformedReply             a 2xx reply off the documented shape (raised by the parsers):
     |                              skip what it was for, write an error row, go on
     +-- NothingWorks               no request of the run succeeded and every one failed the same
                                    way (graph.health decides): stop the run (raised by the client)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import orjson

from harvester.graph.usage import header, parse_usage

__all__ = [
    "AccountFatal",
    "AppSecretRejected",
    "GraphError",
    "InvalidRequest",
    "MalformedReply",
    "MetricUnsupported",
    "NoAnswer",
    "NotEnoughViewers",
    "NothingWorks",
    "ObjectUnavailable",
    "PermissionDenied",
    "PreConversion",
    "ProfileUnavailable",
    "Retriable",
    "Scope",
    "Skippable",
    "Throttled",
    "TokenInvalid",
    "TransientServer",
    "TransportError",
    "TransportReason",
    "UnknownVersion",
    "WrongAccount",
    "classify",
    "decode_reply",
    "detached",
    "nonexisting_field",
    "scrub",
    "valid_metrics",
]

Scope = Literal["app", "account", "page", "user"]
# Why a connection failed, as far as the client could tell: the name did not resolve, the host
# refused or could not be reached, or anything else (timeouts, resets, dropped replies).
TransportReason = Literal["dns", "refused", "other"]

_SECRET_PARAM = re.compile(
    r"(?i)(access_token|appsecret_proof|client_secret|fb_exchange_token|input_token)"
    r"(\"?\s*[:=]\s*\"?|%3D)[^&\s\"'<>,;}]+"
)
_TOKEN_SHAPE = re.compile(r"\b(?:EAA|IGQV|IGAA)[A-Za-z0-9_\-]{8,}")
_AUTH_HEADER = re.compile(r"\b(Bearer|OAuth)\s+[A-Za-z0-9._~+/=\-]{8,}")
_MAX_MESSAGE = 2000  # error rows keep the gist; whole proxy pages do not belong in the lake


# A word every match of a pattern above holds, case-folded as `(?i)` folds: most texts hold none
# (a refused metric's message: ~5,000 a run of 10,000 media), and these substring tests cost a
# tenth of the three regex scans.
_SECRET_WORDS = ("token", "secret", "eaa", "igqv", "igaa", "bearer", "oauth")


_Error = TypeVar("_Error", bound=BaseException)


def detached(error: _Error) -> _Error:
    """`error` to keep as a value (an op's answer, a request's result), without its traceback.

    The traceback's first frame is the one that caught the error, and that frame's locals hold
    the error (in the list of answers it builds): error, traceback and frame form a reference
    cycle, which takes along all the frame held (a whole batch reply, raw and parsed) until the
    cyclic garbage collector gets to it, instead of refcounting freeing it once answered. Kept,
    the refused ops of a batched harvest of 10,000 media held ~430,000 objects in such cycles,
    and the collector's walks over them were half its time (~0.5 s of CPU a run)."""
    error.__traceback__ = None
    return error


def scrub(text: str) -> str:
    """Mask anything that looks like an access token or a secret query parameter."""
    folded = text.casefold()
    if not any(word in folded for word in _SECRET_WORDS):
        return text
    text = _SECRET_PARAM.sub(r"\1\2***", text)
    text = _TOKEN_SHAPE.sub("***", text)
    return _AUTH_HEADER.sub(r"\1 ***", text)


class GraphError(Exception):
    """A failed Graph call. `is_transient` is true when Meta said so or the class is Retriable."""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool = False,
    ) -> None:
        self.message = scrub(message)[:_MAX_MESSAGE]
        self.status = status
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient or isinstance(self, Retriable)
        super().__init__(self.message)

    def __str__(self) -> str:
        fields = {
            "status": self.status,
            "code": self.code,
            "subcode": self.subcode,
            "fbtrace_id": self.fbtrace_id,
        }
        where = ", ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
        return f"{self.message} ({where})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @property
    def label(self) -> str:
        """A low-cardinality key for counting errors: class and code/subcode, else HTTP status."""
        name = type(self).__name__
        if self.code is not None:
            return f"{name} {self.code}" + (f"/{self.subcode}" if self.subcode is not None else "")
        return f"{name} HTTP {self.status}" if self.status is not None else name

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields would be lost by Exception's default pickling (args only).
        return (_restore, (type(self), dict(self.__dict__)))


def _restore(cls: type[GraphError], state: dict[str, Any]) -> GraphError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class Retriable(GraphError):
    """The same request may succeed later."""


class Throttled(Retriable):
    """A rate limit: stop calling `scope` for `retry_after` seconds (None: back off instead)."""

    def __init__(
        self, message: str = "", *, scope: Scope, retry_after: float | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.scope: Scope = scope
        self.retry_after = retry_after


class TransientServer(Retriable):
    """Meta or a proxy failed in a way that usually passes: 5xx, codes 1/2, broken bodies."""


class TransportError(Retriable):
    """The connection failed before a whole reply arrived (timeout, reset, dropped).

    `reason` says whether the host did not resolve, refused or could not be reached, or the
    connection failed otherwise: the client tells, since only it knows the library's exceptions.
    """

    def __init__(self, message: str = "", *, reason: TransportReason = "other", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason: TransportReason = reason

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, reason: TransportReason = "other"
    ) -> TransportError:
        """Wrap a client-library failure; its text is scrubbed (URLs may carry a proof)."""
        detail = str(exc)
        name = type(exc).__name__
        return cls(f"{name}: {detail}" if detail else name, reason=reason)

    @property
    def label(self) -> str:
        return f"TransportError {self.message.split(':', 1)[0]}"


class NoAnswer(Retriable):
    """Meta ran out of time for a batch op and answered it `null`."""

    def __init__(self) -> None:
        super().__init__("no answer: Meta's batch returned null for this request every time")


class Skippable(GraphError):
    """This object cannot be fetched as asked; record why and move on."""


class MetricUnsupported(Skippable):
    """Meta rejected `metric` (None when the reply did not let us tell which).

    `valid` holds the names Meta listed as valid ("must be one of the following values: ..."),
    in its order, or None when the reply listed none: what Meta itself accepts, so a run can
    tell which of them the catalogue lacks.
    """

    def __init__(
        self,
        message: str = "",
        *,
        metric: str | None = None,
        valid: tuple[str, ...] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.metric = metric
        self.valid = valid


class ObjectUnavailable(Skippable):
    """The object is gone, unreadable, or has no insights (e.g. a carousel child)."""


class PreConversion(Skippable):
    """Media posted before the account became a business account has no insights."""


class NotEnoughViewers(Skippable):
    """Stories with fewer than five viewers have no insights."""


class ProfileUnavailable(Skippable):
    """Business discovery cannot see this username: unknown, or not a professional account."""


class AccountFatal(GraphError):
    """Nothing more can be fetched for this account with its token."""


class TokenInvalid(AccountFatal):
    """The token expired or was invalidated; any further call with it is wasted or harmful."""


class PermissionDenied(AccountFatal):
    """The token lacks a permission the harvest needs."""


class WrongAccount(AccountFatal):
    """The token works, but for another account than the one configured: asking with it would
    harvest that other account's data under this id."""


class AppSecretRejected(AccountFatal):
    """Meta rejected the appsecret_proof: the configured app secret is not the app's.

    An authentication failure, so it stops the account (never a refused metric or breakdown);
    since every account's proof is made with the same secret, it is usually every request's.
    """


class InvalidRequest(GraphError):
    """The request itself is wrong; repeating it unchanged gives the same answer."""


class UnknownVersion(InvalidRequest):
    """The `api_version` in the URL is not one Meta serves (a typo, or a version not out yet)."""


class NothingWorks(GraphError):
    """Every request of the run so far failed the same way and none succeeded: stop the run.

    Raised by the client for the request that made the decision and every later one;
    `cause` is the `graph.health.Cause` value, `host` the Graph host (never a token or secret),
    `reason` the cause in a few words ("server error (HTTP 500)").
    """

    def __init__(
        self, message: str = "", *, cause: str = "", host: str = "", reason: str = "", **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.cause = cause
        self.host = host
        self.reason = reason


# -- reply anatomy --------------------------------------------------------------------------------


class MalformedReply(GraphError, ValueError):
    """A 2xx reply whose JSON does not have the shape the Graph API documents.

    Part of the tree so that one `except GraphError` covers every way a call can fail; a
    ValueError too, as a parser's complaint about its input.
    """


class _Reply:
    """What the rules may look at: the status, headers, envelope fields and request context."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        envelope: Mapping[str, Any],
        requested_metrics: Sequence[str],
        minute_seconds: float,
        requested_path: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.code = _int(envelope.get("code"))
        self.subcode = _int(envelope.get("error_subcode"))
        raw = envelope.get("message")
        self.text = raw if isinstance(raw, str) else ""
        trace = envelope.get("fbtrace_id")
        self.fbtrace_id = trace if isinstance(trace, str) else None
        self.flagged_transient = envelope.get("is_transient") is True
        self.message = _full_message(self.text, envelope)
        self.requested_metrics = requested_metrics
        self.minute_seconds = minute_seconds
        self.requested_path = requested_path

    def make(self, cls: type[GraphError], **extra: Any) -> GraphError:
        return cls(
            self.message,
            status=self.status,
            code=self.code,
            subcode=self.subcode,
            fbtrace_id=self.fbtrace_id,
            is_transient=self.flagged_transient,
            **extra,
        )


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def _full_message(text: str, envelope: Mapping[str, Any]) -> str:
    # "Invalid parameter" alone tells an analyst nothing; the useful part is in user_title/msg.
    for key in ("error_user_title", "error_user_msg"):
        extra = envelope.get(key)
        if isinstance(extra, str) and extra and extra not in text:
            return f"{text}: {extra}" if text else extra
    return text


# -- the rules -------------------------------------------------------------------------------------

_Rule = Callable[[_Reply], GraphError]

# Meta gives no regain time for a 368 block; an hour is what practitioners report.
LONG_PAUSE_MINUTES = 60.0


def _retry_after(headers: Mapping[str, str], minute_seconds: float) -> float | None:
    """The server's delay: Retry-After (seconds) or the longest BUC regain time, the later one."""
    candidates = list(parse_usage(headers, minute_seconds=minute_seconds).regain_seconds.values())
    raw = header(headers, "retry-after")
    if raw is not None:
        # The HTTP-date form would need a clock to convert; backoff covers it.
        with contextlib.suppress(ValueError):
            candidates.append(float(raw))
    positive = [c for c in candidates if 0 < c < float("inf")]
    return max(positive) if positive else None


def _throttle(scope: Scope, *, long_pause: bool = False) -> _Rule:
    def rule(reply: _Reply) -> GraphError:
        retry_after = _retry_after(reply.headers, reply.minute_seconds)
        if retry_after is None and long_pause:
            retry_after = LONG_PAUSE_MINUTES * reply.minute_seconds
        return reply.make(Throttled, scope=scope, retry_after=retry_after)

    return rule


def _always(cls: type[GraphError]) -> _Rule:
    return lambda reply: reply.make(cls)


_METRIC_NAMED = (
    # media: "(#100) The Media Insights API does not support the {metric} metric for this ..."
    re.compile(r"does not support the (\w+) metric"),
    # account (and impressions on new media): "... the {metric} metric is no longer supported ..."
    re.compile(r"the (\w+) metric is no longer supported"),
)
# "(#100) metric[{i}] must be one of the following values: ..." names the index into our request.
_METRIC_INDEX = re.compile(r"metric\[(\d{1,6})\] must be one of")
# ... and lists every name Meta accepts there, comma separated, to the end of the message.
_VALID_LIST = re.compile(r"metric\[\d{1,6}\] must be one of the following values:(.*)\Z", re.DOTALL)
# Meta's metric names start with a letter (a lone "_" or a number is no name).
_METRIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def valid_metrics(message: str) -> tuple[str, ...] | None:
    """The metric names listed in Meta's "metric[i] must be one of the following values: a, b"
    (in order, each once), or None when the message holds no such list or a piece of it is not a
    metric name: a list we cannot read whole is not offered as Meta's word. Pure and total.
    """
    match = _VALID_LIST.search(message) if isinstance(message, str) else None
    if match is None:
        return None
    text = match[1].strip().removesuffix(".").strip()
    if not text:
        return ()
    names = [piece.strip() for piece in text.split(",")]
    if not all(_METRIC_NAME.fullmatch(name) for name in names):
        return None
    return tuple(dict.fromkeys(names))


_NONEXISTING_FIELD = re.compile(r"Tried accessing nonexisting field \(([A-Za-z0-9_]+)\)")


def nonexisting_field(error: GraphError) -> str | None:
    """The field Meta's code 100 "Tried accessing nonexisting field (x) on node type (IGUser)"
    names, or None for any other error: a field the version, login or date does not have yet."""
    if error.code != 100 or not isinstance(error.message, str):
        return None
    match = _NONEXISTING_FIELD.search(error.message)
    return match[1] if match else None


# Carousel children: Meta's exact wording is undocumented; this is our guess, matched loosely.
_NO_INSIGHTS_OBJECT = re.compile(
    r"(?i)not available for media in a carousel|object (?:with id '[^']*' )?does not exist"
    r"|unsupported get request"
)
_NOT_ENOUGH_VIEWERS = re.compile(r"(?i)not enough viewers")


# Meta: "Invalid appsecret_proof provided in the API argument" (100, sometimes 190), "API calls
# from the server require an appsecret_proof argument" (100).
_APPSECRET = re.compile(r"(?i)appsecret_proof")
# Meta reads a version it does not serve as a node and names the rest of the path: GET
# /v2.80/me/feed answers "Unknown path components: /me/feed" (code 2500; arsduo/koala#611,
# owlstacks/owlstack-laravel#15), and the simulator alike. A path that is the version alone
# (a batch POST to /v99.0/) is named itself. A wrong edge under a good version names only the
# edge ("/medias"), so the message is a version error only when it names everything after the
# request's version segment; without the request's path only the bare version form is certain.
_UNKNOWN_PATH = re.compile(r"(?i)unknown path components: (/\S*)")
_BARE_VERSION = re.compile(r"(?i)/v\d+(?:\.\d+)?/?")
_VERSION_SEGMENT = re.compile(r"(?i)v\d+(?:\.\d+)?|\d+\.\d+")


def _unknown_version(reply: _Reply) -> bool:
    match = _UNKNOWN_PATH.search(reply.text)
    if match is None:
        return False
    named = match[1].rstrip("/")
    if _BARE_VERSION.fullmatch(match[1]):
        return True
    path = (reply.requested_path or "").rstrip("/")
    if not named or not path.endswith(named):
        return False
    before = path[: len(path) - len(named)]
    return _VERSION_SEGMENT.fullmatch(before.rpartition("/")[2]) is not None


def _code_100(reply: _Reply) -> GraphError:
    if _APPSECRET.search(reply.text):
        return reply.make(AppSecretRejected)
    for pattern in _METRIC_NAMED:
        if match := pattern.search(reply.text):
            return reply.make(MetricUnsupported, metric=match[1])
    if match := _METRIC_INDEX.search(reply.text):
        index = int(match[1])
        metrics = reply.requested_metrics
        return reply.make(
            MetricUnsupported,
            metric=metrics[index] if index < len(metrics) else None,
            # The raw text: the list may run past what the error keeps of its message.
            valid=valid_metrics(reply.text),
        )
    if _NO_INSIGHTS_OBJECT.search(reply.message):
        return reply.make(ObjectUnavailable)
    return reply.make(InvalidRequest)


def _code_190(reply: _Reply) -> GraphError:
    if _APPSECRET.search(reply.text):
        return reply.make(AppSecretRejected)
    return reply.make(TokenInvalid)


def _code_2500(reply: _Reply) -> GraphError:
    if _unknown_version(reply):
        return reply.make(UnknownVersion)
    return _unknown(reply)


def _code_10(reply: _Reply) -> GraphError:
    if _NOT_ENOUGH_VIEWERS.search(reply.text):
        return reply.make(NotEnoughViewers)
    return reply.make(PermissionDenied)


# (code, subcode) -> rule; (code, None) is the rule for any subcode not listed. The single source of
# what each Graph code means for the caller.
_RULES: dict[tuple[int, int | None], _Rule] = {
    (1, None): _always(TransientServer),
    (2, None): _always(TransientServer),
    (4, None): _throttle("app"),
    (17, None): _throttle("user"),
    (32, None): _throttle("page"),
    (341, None): _throttle("app"),
    (368, None): _throttle("user", long_pause=True),
    (613, None): _throttle("account"),
    (80001, None): _throttle("page"),
    (80002, None): _throttle("account"),
    (10, None): _code_10,
    **{(code, None): _always(PermissionDenied) for code in range(200, 300)},
    (100, None): _code_100,
    (100, 33): _always(ObjectUnavailable),
    (100, 2108006): _always(PreConversion),
    (102, None): _always(TokenInvalid),  # legacy "session key invalid"
    (110, 2207013): _always(ProfileUnavailable),  # "Invalid user id" of business discovery
    (190, None): _code_190,
    **{(190, sub): _always(TokenInvalid) for sub in (458, 459, 460, 463, 464, 467, 492)},
    (2500, None): _code_2500,
}


def _unknown(reply: _Reply) -> GraphError:
    if reply.flagged_transient or reply.status >= 500:
        return reply.make(TransientServer)
    return reply.make(InvalidRequest)


def _from_envelope(reply: _Reply) -> GraphError:
    rule = None
    if reply.code is not None:
        rule = _RULES.get((reply.code, reply.subcode)) or _RULES.get((reply.code, None))
    error = (rule or _unknown)(reply)
    if type(error) is InvalidRequest and (reply.flagged_transient or reply.status >= 500):
        return reply.make(TransientServer)  # Meta's own word beats our reading of an odd code
    return error


# -- replies without an error envelope ------------------------------------------------------------

_UNPARSED = object()


def _looks_like_html(headers: Mapping[str, str], body: Any) -> bool:
    content_type = header(headers, "content-type") or ""
    if "html" in content_type.lower():
        return True
    return isinstance(body, bytes | bytearray) and bytes(body[:64]).lstrip().startswith(b"<")


def _without_envelope(
    status: int, headers: Mapping[str, str], body: Any, data: Any, minute_seconds: float
) -> GraphError:
    size = len(body) if isinstance(body, bytes | bytearray | str) else 0
    what = f"HTTP {status}, {size} bytes"
    if status == 429:
        retry_after = _retry_after(headers, minute_seconds)
        return Throttled(
            f"rate limited without a Graph error ({what})",
            status=status,
            scope="app",
            retry_after=retry_after,
        )
    if _looks_like_html(headers, body):
        # Load balancers and proxies answer with HTML pages; they pass like any 5xx.
        return TransientServer(f"HTML page instead of JSON ({what})", status=status)
    if data is _UNPARSED and (200 <= status < 300 or _looks_like_json(body)):
        # A cut-off body says nothing about the request; the connection failed mid-reply.
        return TransientServer(f"truncated or invalid JSON ({what})", status=status)
    if status >= 500 or status == 408:
        return TransientServer(f"server error without a Graph error ({what})", status=status)
    if 200 <= status < 300:
        return InvalidRequest(f"a good reply is not an error ({what})", status=status)
    return InvalidRequest(f"failed without a Graph error ({what})", status=status)


def _looks_like_json(body: Any) -> bool:
    return isinstance(body, bytes | bytearray) and bytes(body[:64]).lstrip()[:1] in (b"{", b"[")


def _envelope(data: Any) -> Mapping[str, Any] | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str):  # some OAuth edges answer {"error": "<message>"}
        return {"message": error}
    return None


def _parse(body: Any) -> Any:
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return _UNPARSED


def _classify(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    data: Any,
    requested_metrics: Sequence[str],
    minute_seconds: float,
    requested_path: str | None,
) -> GraphError:
    envelope = _envelope(data)
    if envelope is None:
        return _without_envelope(status, headers, body, data, minute_seconds)
    reply = _Reply(status, headers, envelope, requested_metrics, minute_seconds, requested_path)
    return _from_envelope(reply)


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    requested_metrics: Sequence[str] = (),
    minute_seconds: float = 60.0,
    requested_path: str | None = None,
) -> GraphError:
    """The error a failed reply means. Total: any status, headers and bytes give a GraphError.

    `requested_metrics` resolves Meta's `metric[i]` wording to a name; `minute_seconds` converts
    Meta's regain minutes (the simulator shortens minutes); `requested_path` (the URL's path)
    tells an unknown api_version from a wrong edge, as Meta names neither by its kind.
    """
    status = status if isinstance(status, int) else 0
    data = _parse(body)
    return _classify(status, headers, body, data, requested_metrics, minute_seconds, requested_path)


def decode_reply(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    requested_metrics: Sequence[str] = (),
    minute_seconds: float = 60.0,
    requested_path: str | None = None,
) -> Any:
    """The parsed JSON of a good reply; raises the classified GraphError for anything else.

    An error envelope fails the reply whatever its status (Meta sometimes sends errors with 200).
    """
    status = status if isinstance(status, int) else 0
    data = _parse(body)
    if 200 <= status < 300 and data is not _UNPARSED and _envelope(data) is None:
        return data
    raise _classify(status, headers, body, data, requested_metrics, minute_seconds, requested_path)
