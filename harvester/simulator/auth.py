"""Who is calling: the token (query, form or Authorization header) and its appsecret_proof."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import NamedTuple

from harvester.simulator import replies
from harvester.simulator.world import World

PROOF_MAX_AGE_SECONDS = 300


class Principal(NamedTuple):
    """A known token. `account` is the account index it reads; None for the user token (all)."""

    kind: str  # "account" | "user" | "page"
    account: int | None
    token_sha256: str
    expired: bool


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

    def __init__(self, world: World, app_secret: str | None, require_proof: bool) -> None:
        self._world = world
        self._secret = app_secret.encode() if app_secret else None
        self._require = require_proof and app_secret is not None
        self._principals: dict[str, Principal] = {}
        for acc in world.accounts:
            self._principals[acc.token] = Principal(
                "account", acc.index, token_sha256(acc.token), acc.token_expired
            )
        self._principals[world.user_token] = Principal(
            "user", None, token_sha256(world.user_token), False
        )
        self._principals[world.orphan_page_token] = Principal(
            "page", -1, token_sha256(world.orphan_page_token), False
        )
        self._good_proofs: set[tuple[str, str]] = set()

    def principal(self, token: str | None) -> Principal | None:
        return None if token is None else self._principals.get(token)

    def authenticate(self, token: str | None, params: Mapping[str, str]) -> Principal:
        """The caller, or the GraphError Meta would send (190, 104, or a proof error)."""
        if not token:
            raise replies.token_missing()
        who = self._principals.get(token)
        if who is None:
            raise replies.token_invalid()
        if who.expired:
            now = self._world.now
            raise replies.token_expired(now.replace(hour=0, minute=0, second=0), now)
        if self._secret is not None:
            self._check_proof(token, params.get("appsecret_proof"), params.get("appsecret_time"))
        return who

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
