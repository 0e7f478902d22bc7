"""The codec floor of the harvester's own requests: a run's HTTP requests, replayed with decoding
and parsing only.

`batch_ceiling.py` (run.py's `codec` floor) sends the insights ops of each media and nothing
else. The harvester also lists the media (with their details), asks the conditional metrics
(facebook_views, crossposted_views) of the media that may have them and reads each account's
profile and stories: 2.7 calls per media where the codec floor makes 1.8. This floor sends the
very requests one run of the harvester made (from the simulator's request log), with the
account's token in the Authorization header, and passes every reply through the harvester's own
decoders and parsers (`decode_batch`, `decode_reply`, `parse_insights`, `parse_account_reply`,
`parse_media`); nothing else: no pipeline, rows, sink, rate gate or retries, and the request
bodies are built before the clock starts. Its client CPU per media is the least those requests
cost a Python client; the run's excess over it is the pipeline's own.

    python benchmarks/replay_floor.py --rounds 3 --accounts 50 --media 200 [--variants batch,job]

Each round runs, against one simulator at 0 ms latency and each in a process of its own: the codec
floor, then for each of `--variants` (run.py's `batch`, `job`, `job_noacct`) the harvester's run
(its requests logged) and the replay of exactly those requests. Results:
benchmarks/results/replay_floor_<stamp>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import orjson
from batch_ceiling import pooled

from harvester.graph.account_replies import parse_account_reply
from harvester.graph.batch import FORM_CONTENT_TYPE, decode_batch
from harvester.graph.errors import GraphError, decode_reply
from harvester.graph.replies import parse_insights, parse_media

RESULTS = Path(__file__).resolve().parent / "results"
# The harvester runs whose requests can be replayed (run.py's variants of the same names).
VARIANTS = {
    "batch": [],
    "job": ["--whole-job"],
    "job_noacct": ["--whole-job", "--without-account-insights"],
}


@dataclass(frozen=True, slots=True)
class Parse:
    """How one reply (a GET's, or a batch op's) is read: `kind` says which parser."""

    kind: str  # "media_insights", "account_insights", "listing" or "decode"
    params: dict[str, str]
    object_id: str


@dataclass(frozen=True, slots=True)
class Request:
    """One logged HTTP request: a GET (`form` None) or a batch POST."""

    path: str
    params: dict[str, str]
    token: str
    form: bytes | None  # a batch POST's body
    parses: tuple[Parse, ...]  # one per op for a POST, else one


def _parse_of(path: str, params: dict[str, str], accounts: set[str]) -> Parse:
    parts = path.strip("/").split("/")
    object_id = parts[-2] if len(parts) >= 2 else parts[-1]
    if parts[-1] == "insights":
        kind = "account_insights" if object_id in accounts else "media_insights"
    elif parts[-1] == "media":
        kind = "listing"
    else:
        kind = "decode"
    return Parse(kind, params, object_id)


def requests_from(lines: list[bytes], tokens: dict[str, str], accounts: set[str]) -> list[Request]:
    """The HTTP requests of a request log's lines (batch ops are part of their POST's)."""
    out = []
    for line in lines:
        entry = orjson.loads(line)
        if entry["batch"]:
            continue
        params = {k: str(v) for k, v in entry["params"].items()}
        token = tokens[entry["token_sha256"]]
        if entry["method"] == "POST":
            parses = []
            for op in orjson.loads(params["batch"]):
                url = urlsplit(op["relative_url"])
                parses.append(_parse_of(url.path, dict(parse_qsl(url.query)), accounts))
            form = urlencode(params).encode()
            out.append(Request(entry["path"], params, token, form, tuple(parses)))
        else:
            parse = _parse_of(entry["path"], params, accounts)
            out.append(Request(entry["path"], params, token, None, (parse,)))
    return out


def _account_kind(params: dict[str, str]) -> str:
    if "timeframe" in params:
        return "demographics"
    if params.get("metric_type") == "total_value":
        return "total"
    return "online" if params.get("metric") == "online_followers" else "series"


def read(parse: Parse, data: Any) -> int:
    """Values (or media) the reply holds, read by the harvester's parser for it."""
    params = parse.params
    if parse.kind == "media_insights":
        metrics = params["metric"].split(",")
        return len(parse_insights(data, metrics, with_totals="breakdown" not in params))
    if parse.kind == "account_insights":
        until = params.get("until")
        return len(
            parse_account_reply(
                data,
                _account_kind(params),
                params["metric"].split(","),
                period=params.get("period", "lifetime"),
                until=None if until is None else datetime.fromtimestamp(int(until), UTC),
                timeframe=params.get("timeframe"),
            )
        )
    if parse.kind == "listing":
        return sum(len(list(parse_media(item, parse.object_id))) for item in data["data"])
    return 1


def _decoded(parse: Parse, status: int, headers: Any, body: bytes) -> int:
    try:
        return read(parse, decode_reply(status, headers, body))
    except GraphError:
        return 0  # classified, as the harvester's client would


async def replay(base_url: str, requests: list[Request], concurrency: int) -> int:
    async def one(session: aiohttp.ClientSession, request: Request) -> int:
        headers = {"Authorization": "Bearer " + request.token}
        url = base_url + request.path
        if request.form is None:
            async with session.get(url, params=request.params, headers=headers) as r:
                status, reply_headers, raw = r.status, r.headers, await r.read()
            return _decoded(request.parses[0], status, reply_headers, raw)
        headers["Content-Type"] = FORM_CONTENT_TYPE
        async with session.post(url, data=request.form, headers=headers) as r:
            reply = orjson.loads(await r.read())
        results = decode_batch(reply, len(request.parses))
        return sum(
            _decoded(parse, *result)
            for parse, result in zip(request.parses, results, strict=True)
            if result is not None
        )

    return await pooled(requests, concurrency, one)


def replay_main(args: argparse.Namespace) -> int:
    info = json.loads(args.world.read_text())
    tokens = {hashlib.sha256(a["token"].encode()).hexdigest(): a["token"] for a in info["accounts"]}
    accounts = {a["id"] for a in info["accounts"]}
    with args.replay.open("rb") as log:
        log.seek(args.start)
        lines = log.read(args.end - args.start).splitlines()
    requests = requests_from(lines, tokens, accounts)
    t0, c0 = time.perf_counter(), time.process_time()
    values = asyncio.run(replay(info["base_url"], requests, args.concurrency))
    result = {
        "requests": len(requests),
        "values": values,
        "wall_seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(result))
    return 0


def measure_main(args: argparse.Namespace) -> int:
    from measure import run_child
    from simproc import SimulatorProcess

    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    started = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        log = Path(tmp) / "requests.jsonl"
        with SimulatorProcess(
            accounts=args.accounts, media=args.media, latency_ms=0.0, request_log=log
        ) as sim:
            for round_ in range(args.rounds):
                codec = run_child(
                    ["benchmarks/batch_ceiling.py", "--accounts", str(args.accounts),
                     "--media", str(args.media)],
                    sim,
                )  # fmt: skip
                for variant in variants:
                    start = log.stat().st_size if log.exists() else 0
                    run = run_child(
                        ["benchmarks/harvest_variant.py", "--accounts", str(args.accounts),
                         "--batch-size", "50", *VARIANTS[variant]],
                        sim,
                    )  # fmt: skip
                    replayed = run_child(
                        ["benchmarks/replay_floor.py", "--replay", str(log), "--start",
                         str(start), "--end", str(log.stat().st_size)],
                        sim,
                    )  # fmt: skip
                    rows.append(_row(variant, round_, run, replayed, codec))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    doc = {
        "command": "python benchmarks/replay_floor.py " + " ".join(sys.argv[1:]),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "system": platform.platform()},
        "rounds": rows,
        "medians": {
            f"{variant} {key}": statistics.median(r[key] for r in rows if r["variant"] == variant)
            for variant in variants
            for key in ("run_over_replay", "replay_over_codec", "run_over_codec")
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"replay_floor_{started.strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    stem.with_suffix(".md").write_text(_table(doc))
    print(f"wrote {stem}.json, {stem}.md", file=sys.stderr)
    return 0


def _row(
    variant: str, round_: int, run: dict[str, Any], replayed: dict[str, Any], codec: dict[str, Any]
) -> dict[str, Any]:
    """One round of one variant: the harvester's run, its replay and the round's codec floor,
    as client CPU per media (the run's media for both the run and its replay)."""
    media = run["media"]
    us = {
        "run": round(run["cpu_seconds"] * 1e6 / media, 1),
        "replay": round(replayed["cpu_seconds"] * 1e6 / media, 1),
        "codec": round(codec["cpu_seconds"] * 1e6 / codec["media"], 1),
    }
    return {
        "variant": variant,
        "round": round_,
        "media": media,
        "calls": run["server"]["calls"],
        "http_requests": run["server"]["http_requests"],
        "replayed_requests": replayed["requests"],
        "codec_calls": codec["server"]["calls"],
        **{f"{name}_us_per_media": value for name, value in us.items()},
        "run_over_replay": round(us["run"] / us["replay"], 2),
        "replay_over_codec": round(us["replay"] / us["codec"], 2),
        "run_over_codec": round(us["run"] / us["codec"], 2),
    }


def _table(doc: dict[str, Any]) -> str:
    keys = list(doc["rounds"][0])
    lines = [
        f"# Replay floor ({doc['started_at']})",
        "",
        f"Command: `{doc['command']}`; 0 ms latency; client CPU per media of each process.",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        *("| " + " | ".join(str(r[k]) for k in keys) + " |" for r in doc["rounds"]),
        "",
        "Medians: " + ", ".join(f"{k} {v:.2f}x" for k, v in doc["medians"].items()),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--media", type=int, default=200, help="media per account")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--variants", default="batch", help=f"comma-separated, of {', '.join(VARIANTS)}"
    )
    parser.add_argument("--world", type=Path, help="(replay child) the simulator's world")
    parser.add_argument("--replay", type=Path, help="(replay child) the simulator's request log")
    parser.add_argument("--start", type=int, default=0, help="(replay child) first byte")
    parser.add_argument("--end", type=int, default=0, help="(replay child) end byte")
    args = parser.parse_args()
    return replay_main(args) if args.replay is not None else measure_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
