"""Meta's reply bodies: the error envelopes with their real wording, and small body helpers.

Each error is written out literally (never derived from the harvester's taxonomy) and shaped like
the recorded replies in ../shared/fixtures: some errors carry `error_subcode`, `is_transient`,
`error_user_title`/`error_user_msg`, others only message/type/code/fbtrace_id, exactly as Meta does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from harvester.simulator.ids import mix

_TRACE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_trace_counter = itertools.count(1)

TS_FORMAT = "%Y-%m-%dT%H:%M:%S+0000"


def fmt_ts(when: datetime) -> str:
    """Meta's timestamp format: `2019-04-05T07:56:32+0000`."""
    return when.astimezone(UTC).strftime(TS_FORMAT)


def fbtrace_id() -> str:
    n = mix(next(_trace_counter), 0xFB)
    chars = []
    for _ in range(11):
        n, r = divmod(n, 64)
        chars.append(_TRACE_ALPHABET[r])
    return "A" + "".join(chars) + "".join(reversed(chars[:-1]))


class GraphError(Exception):
    """An error reply: HTTP status plus the `error` object of Meta's envelope."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error

    @property
    def code(self) -> int:
        return int(self.error["code"])

    def body(self) -> dict[str, Any]:
        return {"error": {**self.error, "fbtrace_id": fbtrace_id()}}


def _oauth(message: str, code: int, status: int = 400, **extra: Any) -> GraphError:
    return GraphError(status, {"message": message, "type": "OAuthException", "code": code, **extra})


def bad_param(message: str) -> GraphError:
    """Code 100 with Meta's "(#100) ..." message: the catch-all for malformed parameters."""
    return _oauth(f"(#100) {message}", 100)


def unsupported_metric(metric: str) -> GraphError:
    return bad_param(
        f"The Media Insights API does not support the {metric} metric for this media product type."
    )


def metric_not_one_of(index: int, valid: Iterable[str]) -> GraphError:
    return bad_param(f"metric[{index}] must be one of the following values: {', '.join(valid)}")


def not_shared_to_facebook(metric: str) -> GraphError:
    """crossposted_views / facebook_views on a media not shared to Facebook: the whole request
    fails with code 100. Meta's wording is not recorded anywhere we found; this is inferred from
    the recorded unsupported-metric body (same type, code, no subcode; airbytehq/airbyte#62902)."""
    return bad_param(f"The Media Insights API does not support the {metric} metric for this media.")


def incompatible_metric(metric: str) -> GraphError:
    """A legacy FEED video refusing total_interactions/likes/comments [seen, notes]."""
    return bad_param(f"Incompatible metric ({metric}) with the media")


def unknown_error() -> GraphError:
    """Meta's answer to a breakdown on a metric that has none [doc, notes]: code 1 wording; the
    status and transience of this case are not recorded, so it is sent as code 1 usually is."""
    return _oauth("An unknown error has occurred.", 1, status=500)


def account_metric_removed(metric: str, version: int) -> GraphError:
    return bad_param(
        f"Starting from version {version} and above, the {metric} metric is no longer supported "
        "for the queried user. Please refer to the documentation at "
        "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a list "
        "of supported metrics."
    )


def carousel_child_insights() -> GraphError:
    # Meta's exact wording for insights on a carousel child is undocumented; this is our guess.
    return bad_param("Insights are not available for media in a carousel album")


def too_many_days() -> GraphError:
    return bad_param("There cannot be more than 30 days (2592000 s) between since and until")


def object_missing(object_id: str) -> GraphError:
    """Reading a node or edge that does not exist or that the token may not see."""
    return GraphError(
        400,
        {
            "message": f"Unsupported get request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation. "
            "Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api",
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
        },
    )


def insights_object_missing(object_id: str) -> GraphError:
    """Insights of a media deleted after it was listed: the body Meta sends (see fixtures)."""
    return _oauth(
        "Invalid parameter",
        100,
        error_data={},
        error_subcode=33,
        is_transient=False,
        error_user_msg=f"Unsupported get request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
    )


def pre_conversion() -> GraphError:
    return _oauth(
        "Invalid parameter",
        100,
        error_data={"blame_field_specs": [[""]]},
        error_subcode=2108006,
        is_transient=False,
        error_user_title="Media posted before business account conversion",
        error_user_msg="The media was posted before the most recent time that the user's account "
        "was converted to a business account from a personal account.",
    )


def few_viewers() -> GraphError:
    return _oauth("(#10) Not enough viewers for the media to show insights", 10)


def _pst(when: datetime) -> str:
    return (when.astimezone(UTC) - timedelta(hours=8)).strftime("%A, %d-%b-%y %H:%M:%S PST")


def token_expired(expired_at: datetime, now: datetime) -> GraphError:
    return _oauth(
        f"Error validating access token: Session has expired on {_pst(expired_at)}. "
        f"The current time is {_pst(now)}.",
        190,
        error_subcode=463,
    )


def token_invalid() -> GraphError:
    return _oauth("Invalid OAuth access token - Cannot parse access token", 190)


def token_missing() -> GraphError:
    return _oauth("An access token is required to request this resource.", 104)


def proof_missing() -> GraphError:
    return bad_param("API calls from the server require an appsecret_proof argument")


def proof_invalid() -> GraphError:
    return bad_param("Invalid appsecret_proof provided in the API argument")


def rate_account() -> GraphError:
    return _oauth(
        "There have been too many calls to this Instagram account. Wait a bit and try again.",
        80002,
        is_transient=True,
    )


def rate_app() -> GraphError:
    return _oauth("(#4) Application request limit reached", 4, is_transient=True)


def rate_user() -> GraphError:
    return _oauth("(#17) User request limit reached", 17, is_transient=True)


def invalid_user_id(username: str) -> GraphError:
    """business_discovery of a username that is unknown or not a professional account: the
    envelope Meta sends (code 110, subcode 2207013), with its user-facing title and message."""
    return _oauth(
        "Invalid user id",
        110,
        error_subcode=2207013,
        is_transient=False,
        error_user_title="Cannot find User",
        error_user_msg=f"The user with username: {username} cannot be found.",
    )


def unknown_path(components: str) -> GraphError:
    return _oauth(f"Unknown path components: {components}", 2500)


def nonexisting_field(field: str, node_type: str) -> GraphError:
    return bad_param(f"Tried accessing nonexisting field ({field}) on node type ({node_type})")


def unsupported_method(method: str) -> GraphError:
    return bad_param(f"Unsupported {method.lower()} request.")


def instagram_unsupported(method: str) -> GraphError:
    """graph.instagram.com's refusal of a request it does not serve, as seen in the wild
    (IGApiException, code 100; e.g. stevenschobert/instafeed.js#654, also for a refresh Meta
    will not do)."""
    message = f"Unsupported request - method type: {method.lower()}"
    return GraphError(400, {"message": message, "type": "IGApiException", "code": 100})


def server_error(code: int) -> GraphError:
    if code == 2:
        msg = "An unexpected error has occurred. Please retry your request later."
        return _oauth(msg, 2, status=503, is_transient=True)
    return _oauth("An unknown error has occurred.", 1, status=500, is_transient=True)


def html_error_page(status: int) -> bytes:
    """A proxy's error page (what a client gets when the edge, not the Graph API, fails)."""
    title = "502 Bad Gateway" if status == 502 else "503 Service Unavailable"
    return (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body>\n"
        f"<h1>{title[4:]}</h1>\n<p>The proxy server could not handle the request.</p>\n"
        "<hr><address>proxygen-bolt</address>\n</body></html>\n"
    ).encode()
