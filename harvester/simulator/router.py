"""Serves one call: version, auth, ownership, budget, then the node or edge handler.

Transport-free on purpose: HTTP requests and batch ops both arrive here as a `Call`, so they
share every rule (and every counter). Errors are GraphErrors turned into Meta's envelope here;
anything else escaping a handler is a simulator bug, answered as Meta's code 1 and counted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harvester.simulator import ids, replies, tokens, validity, versions
from harvester.simulator.account_insights import AccountInsights
from harvester.simulator.auth import Authenticator, Principal, token_sha256
from harvester.simulator.call import Call, Reply
from harvester.simulator.discovery import Discovery, asks_discovery
from harvester.simulator.entities import SimMedia
from harvester.simulator.fields import Field
from harvester.simulator.insights import MediaInsights, split_metrics
from harvester.simulator.objects import ObjectReader, requested
from harvester.simulator.ratelimit import RateLimiter
from harvester.simulator.settings import SimulatorSettings
from harvester.simulator.world import World

EDGE_OF_ACCOUNT = {"media": "media", "stories": "stories", "insights": "account_insights"}
EDGE_OF_MEDIA = {"children": "children", "insights": "insights"}


class Router:
    def __init__(self, world: World, settings: SimulatorSettings, limiter: RateLimiter) -> None:
        self.world = world
        self.settings = settings
        self.limiter = limiter
        self.auth = Authenticator(
            world,
            settings.app_secret,
            settings.require_appsecret_proof,
            timedelta(hours=settings.instagram_token_age_hours),
        )
        if settings.login not in validity.LOGINS:
            raise ValueError(f"login must be one of {', '.join(validity.LOGINS)}")
        extra = settings.extra_metrics
        self.insights = MediaInsights(world, settings.as_of, settings.login, extra)
        # Instagram Login accounts' media answer the Instagram Login metric set.
        self.instagram_insights = MediaInsights(world, settings.as_of, validity.INSTAGRAM, extra)
        self.account_insights = AccountInsights(
            world, settings.as_of, extra, settings.withdrawn_breakdowns
        )
        self.discovery = Discovery(world.competitors)
        self.objects = ObjectReader(
            world, self._expand_insights, self.discovery.render, settings.login, settings.as_of
        )
        default = validity.parse_version(settings.api_version)
        self.default_version = self._served(
            default if default is not None else validity.MAX_VERSION, None
        )
        self.unhandled = 0
        # The version of the call being served, for `insights.metric(...)` expansion. Safe as
        # instance state: `handle` is synchronous, so calls never interleave inside it.
        self._version = self.default_version

    def handle(self, call: Call) -> Reply:
        try:
            body = self._serve(call)
        except replies.GraphError as err:
            return Reply(err.status, err.body(), err.code)
        except Exception:
            self.unhandled += 1
            crash = replies.server_error(1)
            return Reply(crash.status, crash.body(), crash.code)
        return Reply(200, body)

    def _serve(self, call: Call) -> Any:
        parts = [p for p in call.path.split("/") if p]
        version = self.default_version
        if parts and parts[0][:1] == "v" and parts[0][1:2].isdigit():
            parsed = validity.parse_version(parts[0])
            version = self._served(parsed, parts)
            parts = parts[1:]
        if not parts:
            raise replies.unsupported_method(call.method)
        if call.method != "GET":
            raise replies.unsupported_method(call.method)
        self._version = version
        head, rest = parts[0], parts[1:]
        call.object_id = None if head == "me" else head
        call.edge = _edge_guess(head, rest)
        known = self.auth.principal(call.token)
        call.token_sha256 = known.token_sha256 if known is not None else sha(call.token)
        who = self.auth.authenticate(call.token, call.params, call.host)
        if call.host == validity.INSTAGRAM:
            if head == "refresh_access_token" and not rest:
                return self._refresh(call, who)
            if head == "me" and not rest:
                return self._instagram_me(call, who)
            if head in ("me", "debug_token"):
                # Unconfirmed on graph.instagram.com (debug_token, me/permissions): refused.
                self.limiter.charge(None, who.token_sha256)
                raise replies.instagram_unsupported(call.method)
        if head == "me":
            return self._me(call, who, rest)
        if head == "debug_token" and not rest:
            call.edge = "debug_token"
            self.limiter.charge(None, who.token_sha256)
            return tokens.debug_token(self.world, self.auth, call.params.get("input_token"))
        owner, media = self._resolve(head)
        if owner is not None and self.world.accounts[owner].login != call.host:
            owner, media = None, None  # each login's accounts exist on its own host only
        if owner is not None:
            call.account_id = self.world.accounts[owner].id
        readable = owner is not None and (who.account is None or who.account == owner)
        discovery = (
            readable
            and media is None
            and not rest
            and "business_discovery" in call.params.get("fields", "")
            and asks_discovery(requested(call))
        )
        if discovery:
            # Business discovery counts against the app's platform limit, not the account's
            # BUC: charged to the app (and token) only, and its reply carries no BUC usage.
            call.account_id = None
        self.limiter.charge(call.account_id if readable else None, who.token_sha256)
        if not readable:
            if owner is None and ids.decode_page(self.world.seed, head) is not None:
                return self._page(call, who, head, rest)
            raise replies.object_missing(head)
        assert owner is not None
        if len(rest) > 1:
            raise replies.unknown_path("/" + "/".join(rest[1:]))
        if media is None:
            acc = self.world.accounts[owner]
            edge = rest[0] if rest else None
            node = "business_discovery" if discovery else "object"
            call.edge = EDGE_OF_ACCOUNT.get(edge, edge) if edge else node
            if edge is None:
                return self.objects.user_node(acc, call)
            if edge == "media":
                return self.objects.media_edge(acc, call)
            if edge == "stories":
                return self.objects.stories_edge(acc, call)
            if edge == "insights":
                return self.account_insights.reply(acc, version, call)
            raise replies.unknown_path(f"/{edge}")
        edge = rest[0] if rest else None
        call.edge = EDGE_OF_MEDIA.get(edge, edge) if edge else "object"
        if edge is None:
            return self.objects.media_node(media, call)
        if edge == "insights":
            p = call.params
            metrics = split_metrics(p.get("metric"))
            served = self._insights_of(media)
            return served.reply(media, version, metrics, p.get("period"), p.get("breakdown"))
        if edge == "children":
            return self.objects.children_edge(media, call)
        raise replies.unknown_path(f"/{edge}")

    def _insights_of(self, media: SimMedia) -> MediaInsights:
        if self.world.accounts[media.account_index].login == validity.INSTAGRAM:
            return self.instagram_insights
        return self.insights

    def _instagram_me(self, call: Call, who: Principal) -> dict[str, Any]:
        """`/me` with an Instagram User token: `user_id` is the professional account id the
        Graph uses, `id` an app-scoped id (different, as at Meta)."""
        self.limiter.charge(None, who.token_sha256)
        call.edge = "me"
        assert who.account is not None
        acc = self.world.accounts[who.account]
        fields = (call.params.get("fields") or "id").split(",")
        known = {"id": "9" + acc.id[6:], "user_id": acc.id, "username": acc.username}
        for name in fields:
            if name not in known:
                raise replies.nonexisting_field(name, "User")
        return {name: known[name] for name in fields}

    def _refresh(self, call: Call, who: Principal) -> dict[str, Any]:
        self.limiter.charge(None, who.token_sha256)
        call.edge = "refresh_access_token"
        if call.params.get("grant_type") != "ig_refresh_token":
            raise replies.bad_param("grant_type must be ig_refresh_token")
        assert call.token is not None
        token, seconds = self.auth.refresh(call.token)
        return {"access_token": token, "token_type": "bearer", "expires_in": seconds}

    def _served(self, major: int | None, parts: list[str] | None) -> int:
        """The version that answers: an expired one is served as the oldest available (Meta
        auto-upgrades); one that never existed, or not yet on `as_of`, is an unknown path."""
        served = None if major is None else versions.served_version(major, self.settings.as_of)
        if served is not None:
            return served
        if parts is None:  # the default version itself: serve the newest rather than refuse
            return validity.MAX_VERSION
        # Meta reads a bad version as a node and names the rest of the path (arsduo/koala#611:
        # "Unknown path components: /IUPATDC35/feed", code 2500, for api_version "v2.80").
        rest = "/".join(parts[1:])
        raise replies.unknown_path(f"/{rest}" if rest else f"/{parts[0]}/")

    def _resolve(self, head: str) -> tuple[int | None, SimMedia | None]:
        """(owning account index, media) for an IG user or media id; (None, None) otherwise."""
        seed = self.world.seed
        n_accounts = len(self.world.accounts)
        if head.startswith("178414"):
            a = ids.decode_account(seed, head)
            if a is not None and a < n_accounts:
                return a, None
        media = self.world.media(head)
        if media is not None:
            return media.account_index, media
        return None, None

    def _page(self, call: Call, who: Principal, head: str, rest: list[str]) -> Any:
        a = ids.decode_page(self.world.seed, head)
        assert a is not None
        mine = (
            who.account is None
            or who.account == a
            or (who.account == -1 and a == len(self.world.accounts))
        )
        if rest or a > len(self.world.accounts) or not mine:
            raise replies.object_missing(head)
        call.edge = "object"
        return self.objects.page_node(a, call)

    def _me(self, call: Call, who: Principal, rest: list[str]) -> Any:
        self.limiter.charge(None, who.token_sha256)
        if rest == ["accounts"]:
            call.edge = "me_accounts"
            if who.kind != "user":
                raise replies.nonexisting_field("accounts", "Page")
            return self.objects.me_accounts(call)
        if rest == ["permissions"]:
            call.edge = "me_permissions"
            return tokens.permissions(self.world, who)
        if rest:
            raise replies.unknown_path("/" + "/".join(rest))
        call.edge = "object"
        if who.kind == "user":
            return {"id": ids.USER_ID, "name": "Simulated User"}
        a = len(self.world.accounts) if who.account in (None, -1) else who.account
        assert a is not None
        return self.objects.page_node(a, call)

    def _expand_insights(self, media: SimMedia, spec: Field) -> dict[str, Any]:
        metrics = split_metrics(spec.modifier("metric"))
        try:
            return self._insights_of(media).reply(
                media, self._version, metrics, spec.modifier("period"), spec.modifier("breakdown")
            )
        except replies.GraphError as err:
            # A metric the media rejects fails the whole page, as at Meta; a media-level trouble
            # (deleted, pre-conversion, few viewers) only leaves that item without insights.
            if err.code == 100 and err.error.get("error_subcode") is None:
                raise
            return {"data": []}


def _edge_guess(head: str, rest: list[str]) -> str:
    """The edge name for stats, known before auth so rejected calls are counted where they aimed."""
    if head == "me":
        return "me_accounts" if rest == ["accounts"] else "object"
    if head == "debug_token":
        return "debug_token"
    if not rest:
        return "object"
    if rest[0] == "insights":
        return "account_insights" if head.startswith("178414") else "insights"
    return rest[0]


def sha(token: str | None) -> str | None:
    return None if token is None else token_sha256(token)
