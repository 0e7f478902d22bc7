"""Seeded fault injection that is reproducible whatever the client's concurrency.

A draw depends on the request's identity (method, path, parameters without credentials) and on how
many times that identity was seen before, never on arrival order: the same run injects the same
faults, and a retry of a faulted request gets a fresh, equally reproducible draw.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping

from harvester.simulator.call import AUTH_PARAMS
from harvester.simulator.ids import unit
from harvester.simulator.settings import FaultSettings

HTTP_KINDS = ("server_error", "html_error", "truncated_json", "dropped_connection", "stall")
OP_KINDS = ("server_error", "batch_null")


class FaultPlan:
    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._attempts: Counter[bytes] = Counter()
        self._http = self._thresholds(HTTP_KINDS)
        self._op = self._thresholds(OP_KINDS)

    def _thresholds(self, kinds: tuple[str, ...]) -> list[tuple[float, str]]:
        out, acc = [], 0.0
        for kind in kinds:
            rate = self.settings.rate(kind)
            if rate > 0:
                acc += rate
                out.append((acc, kind))
        return out

    def draw(
        self, method: str, path: str, params: Mapping[str, str], batch_op: bool = False
    ) -> str | None:
        """The fault to inject into this request (None for a healthy reply)."""
        table = self._op if batch_op else self._http
        if not table:
            return None
        ident = hashlib.blake2b(digest_size=12)
        ident.update(b"op" if batch_op else b"http")
        ident.update(f"{method}\0{path}".encode("utf-8", "surrogatepass"))
        for name in sorted(params):
            if name not in AUTH_PARAMS:
                ident.update(f"\0{name}={params[name]}".encode("utf-8", "surrogatepass"))
        key = ident.digest()
        attempt = self._attempts[key]
        self._attempts[key] = attempt + 1
        u = unit(self.settings.seed, int.from_bytes(key, "big"), attempt)
        for threshold, kind in table:
            if u < threshold:
                return kind
        return None

    def server_error_code(self, method: str, path: str) -> int:
        """1 (HTTP 500) or 2 (HTTP 503), fixed per path so replays match."""
        digest = hashlib.blake2b(f"{method} {path}".encode(), digest_size=2).digest()
        return 1 if digest[0] % 2 else 2
