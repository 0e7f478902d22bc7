"""Who is calling: the token (query, form or Authorization header) and its appsecret_proof.

A token works on its own login's host only: an Instagram User token (IGAA...) on the Facebook
host, or a Facebook token on the Instagram host, is one Meta "Cannot parse" (190). Instagram
Login tokens have an issue time (the world's `instagram_token_age_hours` before its clock, or
the refresh that made them): Meta refreshes them only once they are 24 hours old.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from harvester.simulator import ids, replies
from harvester.simulator.world import World

PROOF_MAX_AGE_SECONDS = 300
REFRESH_MIN_AGE = timedelta(hours=24)
LONG_LIVED_SECONDS = 60 * 86_400


class Principal(NamedTuple):
    """A known token. `account` is the account index it reads; None for the user token (all)."""

    kind: str  # "account" | "user" | "page"
    account: int | None
    token_sha256: str
    expired: bool
    login: str = "facebook"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_from_header(value: str | None) -> str | None:
    """`Authorization: Bearer <t>` or `OAuth <t>`; anything else carries no token."""
    if not value:
        return None
    scheme, _, rest = value.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and rest.strip():
        return rest.strip()
    return None


class Authenticator:
    """Maps tokens to principals and enforces the app's appsecret_proof policy."""

    def __init__(
        self,
        world: World,
        app_secret: str | None,
        require_proof: bool,
        instagram_token_age: timedelta = timedelta(hours=48),
    ) -> None:
        self._world = world
        self._secret = app_secret.encode() if app_secret else None
        self._require = require_proof and app_secret is not None
        self._principals: dict[str, Principal] = {}
        # When each Instagram Login token was issued.
        self._issued: dict[str, datetime] = {}
        self._refreshes = 0
        for acc in world.accounts:
            self._principals[acc.token] = Principal(
                "account", acc.index, token_sha256(acc.token), acc.token_expired, acc.login
            )
            if acc.login == "instagram":
                self._issued[acc.token] = world.now - instagram_token_age
        self._principals[world.user_token] = Principal(
            "user", None, token_sha256(world.user_token), False
        )
        self._principals[world.orphan_page_token] = Principal(
            "page", -1, token_sha256(world.orphan_page_token), False
        )
        self._good_proofs: set[tuple[str, str]] = set()

    def principal(self, token: str | None) -> Principal | None:
        return None if token is None else self._principals.get(token)

    def authenticate(
        self, token: str | None, params: Mapping[str, str], host: str = "facebook"
    ) -> Principal:
        """The caller, or the GraphError Meta would send (190, 104, or a proof error)."""
        if not token:
            raise replies.token_missing()
        who = self._principals.get(token)
        if who is None or who.login != host:
            raise replies.token_invalid()
        if who.expired:
            now = self._world.now
            raise replies.token_expired(now.replace(hour=0, minute=0, second=0), now)
        # appsecret_proof on graph.instagram.com is unconfirmed (and an Instagram app has its
        # own secret): the Instagram host neither asks nor checks it.
        if self._secret is not None and host == "facebook":
            self._check_proof(token, params.get("appsecret_proof"), params.get("appsecret_time"))
        return who

    def refresh(self, token: str) -> tuple[str, int]:
        """A new Instagram Login token for `token` (authenticated already) and its lifetime in
        seconds; Meta's refusal for one under 24 hours old."""
        issued = self._issued.get(token)
        who = self._principals[token]
        if issued is None or self._world.now - issued < REFRESH_MIN_AGE:
            raise replies.instagram_unsupported("get")
        self._refreshes += 1
        new = ids.token_for(self._world.seed, f"refresh-{self._refreshes}", who.account or 0)
        new = "IGAA" + new[4:]
        self._principals[new] = who._replace(token_sha256=token_sha256(new))
        self._issued[new] = self._world.now
        return new, LONG_LIVED_SECONDS

    def _check_proof(self, token: str, proof: str | None, proof_time: str | None) -> None:
        if proof is None:
            if self._require:
                raise replies.proof_missing()
            return
        assert self._secret is not None
        if proof_time is None:
            if (token, proof) in self._good_proofs:
                return
            expected = hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected.encode(), proof.lower().encode()):
                raise replies.proof_invalid()
            self._good_proofs.add((token, proof))
            return
        if not proof_time.isdigit() or abs(time.time() - int(proof_time)) > PROOF_MAX_AGE_SECONDS:
            raise replies.proof_invalid()
        message = f"{token}|{proof_time}".encode()
        expected = hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), proof.lower().encode()):
            raise replies.proof_invalid()
