"""Benchmark results as a markdown table and a PNG chart (media/s against accounts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from statistics import median
from typing import Any

LABELS = {
    "batch": "harvester, batching",
    "nobatch": "harvester, no batching",
    "sdk": "facebook-business SDK loop",
    "codec": "batch codec floor (no pipeline)",
    "job": "harvester, whole default job",
    "job_noacct": "harvester, whole job, account_insights = false",
    "sdk_job": "facebook-business SDK, whole job",
}
RATE, CPU = "media_per_s", "client_cpu_us_per_media"
# Each variant's baseline for the x SDK column: the whole job is held against the SDK doing it.
BASELINE = {"job": "sdk_job", "job_noacct": "sdk_job", "sdk_job": "sdk_job"}
COLUMNS = (
    ("latency_ms", "latency ms"),
    ("accounts", "accounts"),
    ("variant", "variant"),
    ("round", "round"),
    ("media", "media"),
    ("media_per_s", "media/s"),
    ("x_sdk", "x SDK"),
    ("http_requests_per_s", "HTTP req/s"),
    ("calls_per_s", "calls/s"),
    ("client_cpu_us_per_media", "client CPU us/media"),
    ("server_cpu_pct", "server CPU %"),
    ("peak_rss_mb", "peak RSS MB"),
    ("calls_per_media", "calls/media"),
    ("calls_per_account", "calls/account"),
    ("max_calls_per_account", "max calls/account"),
    ("note", "note"),
)


def with_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row plus `x_sdk`: its media/s over its SDK baseline's (`sdk`, or `sdk_job` for the
    whole-job variants) at the same latency and accounts."""
    sdk = {
        (r["variant"], r["latency_ms"], r["accounts"]): r["media_per_s"]
        for r in results
        if r["variant"] in ("sdk", "sdk_job")
    }
    out = []
    for r in results:
        base = sdk.get((BASELINE.get(r["variant"], "sdk"), r["latency_ms"], r["accounts"]))
        ratio = round(r["media_per_s"] / base, 1) if base else ""
        out.append({**r, "x_sdk": ratio})
    return out


def write_table(doc: dict[str, Any], path: Path) -> None:
    lines = [
        f"# Benchmark results ({doc['started_at']})",
        "",
        f"Command: `{doc['command']}`  ",
        f"Machine: {doc['machine']['cpus']} CPUs, Python {doc['machine']['python']}; "
        "simulator in its own process; rates over each variant's harvest wall time.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    rounds = any(r.get("round") for r in doc["results"])
    columns = [c for c in COLUMNS if rounds or c[0] != "round"]
    lines[-2:] = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in with_ratios(doc["results"]):
        cells = [
            LABELS.get(row[key], row[key]) if key == "variant" else row.get(key, "")
            for key, _ in columns
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += cpu_summary(doc["results"])
    lines += whole_job_summary(doc["results"])
    path.write_text("\n".join(lines) + "\n")


def _by_round(results: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[int, dict[str, Any]]]:
    """Runs by (variant, latency, accounts), then by round (a run without one is round 0)."""
    out: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in results:
        out[r["variant"], r["latency_ms"], r["accounts"]][r.get("round", 0)] = r
    return out


def _pairs(
    runs: dict[tuple[Any, ...], dict[int, dict[str, Any]]],
    top: tuple[Any, ...],
    bottom: tuple[Any, ...],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """`top`'s run and `bottom`'s, round by round: two variants of one round ran one after the
    other, so a machine whose speed drifts between rounds moves both. A variant run once (the
    SDK's) is the bottom of every round."""
    under = runs.get(bottom, {})
    pairs = []
    for round_, run in sorted(runs.get(top, {}).items()):
        base = under.get(round_) or (under.get(0) if len(under) == 1 else None)
        if base:
            pairs.append((run, base))
    return pairs


def _paired(
    runs: dict[tuple[Any, ...], dict[int, dict[str, Any]]],
    top: tuple[Any, ...],
    bottom: tuple[Any, ...],
    key: str,
) -> list[float]:
    """`top`'s figure over `bottom`'s, round by round (`_pairs`)."""
    return [run[key] / base[key] for run, base in _pairs(runs, top, bottom) if base[key]]


def _median(ratios: list[float], fmt: str) -> str:
    """The median ratio, and each round's when there were several."""
    text = fmt.format(median(ratios))
    if len(ratios) > 1:
        text += f" (median of {len(ratios)} rounds: {', '.join(fmt.format(r) for r in ratios)})"
    return text


def cpu_summary(results: list[dict[str, Any]]) -> list[str]:
    """Issue 18's two figures where a run has them: the batch variant's client CPU per media
    over the codec floor's (a ratio within one run, so it holds on any machine; target <= 1.5x
    at 0 ms), and its media/s over the SDK loop's (target >= 200x at 50 ms, 50 accounts)."""
    runs = _by_round(results)
    lines: list[str] = []
    for variant, latency, accounts in runs:
        if variant != "batch":
            continue
        parts = []
        cpu = _paired(runs, ("batch", latency, accounts), ("codec", latency, accounts), CPU)
        if cpu:
            parts.append(f"client CPU {_median(cpu, '{:.2f}x')} the codec floor's")
        sdk = _paired(runs, ("batch", latency, accounts), ("sdk", latency, accounts), RATE)
        if sdk:
            parts.append(f"{_median(sdk, '{:.0f}x')} the SDK loop's media/s")
        if parts:
            lines.append(f"- {latency:g} ms, {accounts} accounts: batch at " + ", ".join(parts))
    return _section(
        "Client CPU (issue 18: batch <= 1.5x the codec floor at 0 ms, >= 200x SDK at 50 ms):", lines
    )


def whole_job_summary(results: list[dict[str, Any]]) -> list[str]:
    """Issue 15's two ratios where a run has them: the whole job's media/s over the same job
    without account insights (target >= 90 %), and over the SDK doing the whole job (>= 200x at
    50 ms)."""
    runs = _by_round(results)
    lines: list[str] = []
    for variant, latency, accounts in runs:
        if variant != "job":
            continue
        parts = []
        job = ("job", latency, accounts)
        noacct = [100 * r for r in _paired(runs, job, ("job_noacct", latency, accounts), RATE)]
        if noacct:
            parts.append(f"{_median(noacct, '{:.1f} %')} of job_noacct's media/s")
        sdk = _paired(runs, job, ("sdk_job", latency, accounts), RATE)
        if sdk:
            parts.append(f"{_median(sdk, '{:.0f}x')} sdk_job's")
        if parts:
            lines.append(f"- {latency:g} ms, {accounts} accounts: job at " + ", ".join(parts))
        if cost := account_cost(_pairs(runs, job, ("job_noacct", latency, accounts))):
            lines.append(f"  - {cost}")
    return _section("Whole job (issue 15: >= 90 % of job_noacct, >= 200x sdk_job at 50 ms):", lines)


def account_cost(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """What account insights add to the job, job over job_noacct (medians of the rounds): calls,
    insight rows, and the CPU seconds of the client and of the simulator, which share the
    machine's cores. "" for runs without these figures (older results)."""
    pairs = [(j, n) for j, n in pairs if "client_cpu_seconds" in j and "client_cpu_seconds" in n]
    if not pairs:
        return ""

    def more(figure: Callable[[dict[str, Any]], float]) -> str:
        return f"{100 * (median(figure(j) / figure(n) for j, n in pairs) - 1):+.0f} %"

    return (
        f"account insights add {more(itemgetter('calls'))} calls, "
        f"{more(lambda r: r['rows'] + r['account_rows'])} insight rows, "
        f"{more(itemgetter('client_cpu_seconds'))} client CPU and "
        f"{more(itemgetter('server_cpu_seconds'))} simulator CPU"
    )


def _section(title: str, lines: list[str]) -> list[str]:
    """A titled list under the table, or nothing when a run has none of its figures."""
    return ["", title, "", *lines] if lines else []


def write_chart(doc: dict[str, Any], path: Path) -> bool:
    """The chart beside the table; False (and no file) when matplotlib is not installed: the
    tables are the result, the chart is optional."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latencies = sorted({r["latency_ms"] for r in doc["results"]})
    fig, axes = plt.subplots(1, len(latencies), figsize=(5.5 * len(latencies), 4.2), squeeze=False)
    for ax, latency in zip(axes[0], latencies, strict=True):
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for (variant, at, accounts), rounds in _by_round(doc["results"]).items():
            if at == latency:
                rate = median(r["media_per_s"] for r in rounds.values())
                series[variant].append((accounts, rate))
        for variant, points in series.items():
            points.sort()
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=LABELS.get(variant, variant))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("accounts")
        ax.set_ylabel("media/s")
        ax.set_title(f"latency {latency:g} ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
