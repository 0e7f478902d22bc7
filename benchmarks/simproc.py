"""The simulated Graph API in a process of its own, so the client under test is measured alone."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    """`python -m harvester.simulator` with a healthy, trouble-free world and no rate budgets.

    Troubles (deleted media, expired tokens...) are off so that every variant does the same work;
    budgets are off so that pacing never decides a variant's speed.
    """

    def __init__(
        self,
        *,
        accounts: int,
        media: int,
        latency_ms: float,
        seed: int = 7,
        request_log: Path | None = None,
    ) -> None:
        self.accounts = accounts
        self.media = media
        self.latency_ms = latency_ms
        self.seed = seed
        self.request_log = request_log  # JSONL of every call served (replay_floor.py reads it)
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-sim-")
        self.world_file = Path(self._tmp.name) / "world.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self.world: dict[str, Any] = {}

    def __enter__(self) -> Self:
        cmd = [
            sys.executable, "-m", "harvester.simulator", "--port", "0",
            "--seed", str(self.seed), "--accounts", str(self.accounts),
            "--media", str(self.media), "--latency-ms", str(self.latency_ms),
            "--no-troubles", "--world-out", str(self.world_file),
        ]  # fmt: skip
        if self.request_log is not None:
            cmd += ["--request-log", str(self.request_log)]
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.world_file.exists():
            if self._proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("simulator did not start within 60 s")
            time.sleep(0.05)
        self.world = json.loads(self.world_file.read_text())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._tmp.cleanup()

    @property
    def base_url(self) -> str:
        return str(self.world["base_url"])

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/__sim/stats", timeout=30) as reply:
            loaded: dict[str, Any] = json.loads(reply.read())
            return loaded


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a variant cost the server: HTTP requests, calls (a batch op is a call), per account."""
    per_account = {
        key: after["per_account"].get(key, 0) - before["per_account"].get(key, 0)
        for key in after["per_account"]
    }
    errors = {
        key: value - before["by_error_code"].get(key, 0)
        for key, value in after["by_error_code"].items()
        if value - before["by_error_code"].get(key, 0)
    }
    return {
        "http_requests": after["requests_total"] - before["requests_total"],
        "calls": after["calls_total"] - before["calls_total"],
        "max_calls_per_account": max(per_account.values(), default=0),
        "error_codes": errors,
    }
