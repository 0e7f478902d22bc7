"""What clients did: counters for `GET /__sim/stats` and the per-call log (tokens hashed)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import orjson

from harvester.simulator.call import Call


class Stats:
    """Counts every HTTP request and every call (a batch op is a call of its own)."""

    def __init__(self, keep_log: bool, log_file: Path | None = None) -> None:
        self.requests_total = 0
        self.calls_total = 0
        self.by_edge: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_error_code: Counter[int] = Counter()
        self.per_account: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.after_190: Counter[str] = Counter()
        self._saw_190: set[str] = set()
        self.keep_log = keep_log
        self.request_log: list[dict[str, Any]] = []
        # Unbuffered: a reader (a benchmark replaying a run's requests) sees each call once served.
        self._file: IO[bytes] | None = (
            log_file.open("ab", buffering=0) if log_file is not None else None
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def request(self) -> None:
        self.requests_total += 1

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    def record(self, call: Call, status: int, error_code: int | None) -> None:
        """Count one served call; `call` carries what the router learned (account, edge, token)."""
        self.calls_total += 1
        edge = call.edge or "unknown"
        self.by_edge[edge] += 1
        if call.batch:
            self.by_edge["batch_ops"] += 1
        self.by_status[status] += 1
        if error_code is not None:
            self.by_error_code[error_code] += 1
        if call.account_id is not None:
            self.per_account[call.account_id] += 1
        token = call.token_sha256
        if token is not None:
            if token in self._saw_190:
                self.after_190[token] += 1
            elif error_code == 190:
                self._saw_190.add(token)
        if self.keep_log or self._file is not None:
            entry = {
                "t": time.time(),
                "method": call.method,
                "path": call.path,
                "params": call.public_params(),
                "account_id": call.account_id,
                "token_sha256": token,
                "status": status,
                "error_code": error_code,
                "batch": call.batch,
                "object_id": call.object_id,
                "edge": call.edge,
                "host": call.host,
            }
            if self.keep_log:
                self.request_log.append(entry)
            if self._file is not None:
                self._file.write(orjson.dumps(entry) + b"\n")

    def snapshot(self, blocked_rejections: int, unhandled: int) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "calls_total": self.calls_total,
            "by_edge": dict(self.by_edge),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "by_error_code": {str(k): v for k, v in self.by_error_code.items()},
            "per_account": dict(self.per_account),
            "rejected_while_blocked": blocked_rejections,
            "faults": dict(self.faults),
            "calls_after_190": dict(self.after_190),
            "unhandled_exceptions": unhandled,
        }
