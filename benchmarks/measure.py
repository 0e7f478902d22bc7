"""Run one benchmark variant in a child process and measure it: wall, CPU, peak RSS, server cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simproc import ROOT, SimulatorProcess, stats_delta

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (the simulator), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def run_child(cmd: list[str], sim: SimulatorProcess) -> dict[str, Any]:
    """Run `cmd` (which prints one JSON line) against `sim`; add what only the parent can see.

    `os.wait4` gives the child's own rusage (CPU including interpreter start-up, peak RSS), and
    the simulator's stats and CPU before and after give what the variant cost the server.
    """
    before, server_cpu0 = sim.stats(), process_cpu_seconds(sim.pid)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *cmd, "--world", str(sim.world_file)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail}")
    server_cpu = process_cpu_seconds(sim.pid) - server_cpu0
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["process_wall_seconds"] = elapsed
    result["process_cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["process_peak_rss_kb"] = usage.ru_maxrss
    result["server"] = stats_delta(before, sim.stats())
    result["server"]["cpu_seconds"] = server_cpu
    return result


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """The reported figures of one run: rates over the harvest's own wall time."""
    media = raw["media"] or 1
    wall = raw["wall_seconds"]
    server = raw["server"]
    return {
        "media": raw["media"],
        "rows": raw["rows"],
        "account_rows": raw.get("account_rows", 0),
        "wall_seconds": round(wall, 3),
        "media_per_s": round(raw["media"] / wall, 1),
        "http_requests_per_s": round(server["http_requests"] / wall, 1),
        "calls_per_s": round(server["calls"] / wall, 1),
        "client_cpu_us_per_media": round(raw["cpu_seconds"] * 1e6 / media, 1),
        "client_cpu_pct": round(100 * raw["cpu_seconds"] / wall, 1),
        "server_cpu_pct": round(100 * server["cpu_seconds"] / wall, 1),
        "client_cpu_seconds": round(raw["cpu_seconds"], 3),
        "server_cpu_seconds": round(server["cpu_seconds"], 3),
        "calls": server["calls"],
        "peak_rss_mb": round(raw["process_peak_rss_kb"] / 1024, 1),
        "calls_per_media": round(server["calls"] / media, 3),
        "http_requests_per_media": round(server["http_requests"] / media, 3),
        "max_calls_per_account": server["max_calls_per_account"],
        "server_error_codes": server["error_codes"],
    }


def whole_job_figures(raw: dict[str, Any], fig: dict[str, Any], accounts: int) -> dict[str, Any]:
    """A whole-job variant's figures plus calls per account. The SDK script (`sdk_job.py`)
    reports its own whole-job rate and calls (its capped part extrapolated per account, see
    there); the harvester's are the simulator's counts over the run (stories in `media`)."""
    job = raw.get("whole_job")
    if job is None:
        calls = round(fig["calls_per_media"] * (raw["media"] or 1))
        return {**fig, "calls_per_account": round(calls / accounts, 1)}
    return {
        **fig,
        "media_per_s": job["media_per_s"],
        "calls_per_media": job["calls_per_media"],
        "calls_per_account": job["calls_per_account"],
        "whole_job": job,
    }
