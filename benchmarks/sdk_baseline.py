"""The baseline: Instagram insights harvested the way users write it today, with the official SDK.

A plain loop over accounts, the media edge walked with the SDK's cursor, and one insights call per
media (plus the breakdown call the harvester also makes), rows gathered in a list and written to
Parquet at the end. Run by `run.py` in a process of its own; prints one JSON line of figures:

    python benchmarks/sdk_baseline.py --world WORLD.json --accounts 10 --max-media 300

The SDK talks to `FacebookSession.GRAPH` (documented as "the graph url without an ending
forward-slash"); pointing a session's GRAPH at the simulator is the only change to user code.
`--max-media` / `--max-seconds` bound the run: the loop is sequential, so its media/s does not
depend on how many media it is given, and a short run measures the same rate.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from facebook_business.adobjects.igmedia import IGMedia
from facebook_business.adobjects.iguser import IGUser
from facebook_business.api import FacebookAdsApi
from facebook_business.session import FacebookSession

from harvester.harvest.routing import route

MEDIA_FIELDS = ["id", "media_type", "media_product_type", "timestamp", "permalink"]


def api_for(world: dict[str, Any], account: dict[str, Any]) -> FacebookAdsApi:
    """One account's SDK session, its GRAPH pointed at the simulator (the only change)."""
    session = FacebookSession(access_token=account["token"])
    session.GRAPH = world["base_url"]
    return FacebookAdsApi(session, api_version=world["api_version"])


def insight_rows(owner: str, insights: Any, rows: list[dict[str, Any]]) -> None:
    """The rows a user's loop keeps from one insights reply: a total, each value of a series,
    each breakdown result (`metric:dimension,...`)."""
    for insight in insights:
        total = insight.get("total_value") or {}
        if "value" in total:
            rows.append({"owner": owner, "metric": insight["name"], "value": total["value"]})
        name = insight["name"]
        for point in insight.get("values") or ():
            value = point.get("value")
            if isinstance(value, dict):  # online_followers: one count per hour
                rows += [
                    {"owner": owner, "metric": f"{name}:{h}", "value": v} for h, v in value.items()
                ]
            else:
                rows.append({"owner": owner, "metric": name, "value": value})
        for group in total.get("breakdowns") or ():
            for result in group["results"]:
                metric = insight["name"] + ":" + ",".join(result["dimension_values"])
                rows.append({"owner": owner, "metric": metric, "value": result["value"]})


def media_rows(api: Any, media: Any, api_version: str, rows: list[dict[str, Any]]) -> None:
    """One media's (or story's) insights the documented way: the metrics the harvester routes
    to its kind (`harvester.harvest.routing.route`, what a user's script hardcodes for its
    version) in one call, then one call per breakdown, as the harvester asks them."""
    found = route(media["media_type"], media["media_product_type"], api_version)
    if not found:
        return
    owner = IGMedia(media["id"], api=api)
    insight_rows(media["id"], owner.get_insights(params={"metric": ",".join(found.metrics)}), rows)
    for metric, key in found.breakdowns:
        params = {"metric": metric, "breakdown": key}
        insight_rows(media["id"], owner.get_insights(params=params), rows)


def harvest(
    world: dict[str, Any], accounts: int, max_media: int, max_seconds: float
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    media_done = 0
    calls = 0
    deadline = time.perf_counter() + max_seconds
    for account in world["accounts"][:accounts]:
        api = api_for(world, account)
        for media in IGUser(account["id"], api=api).get_media(
            fields=MEDIA_FIELDS, params={"limit": 100}
        ):
            if media_done >= max_media or time.perf_counter() > deadline:
                break
            media_rows(api, media, world["api_version"], rows)
            media_done += 1
        calls += api.get_num_requests_attempted()
        if media_done >= max_media or time.perf_counter() > deadline:
            break
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(pa.Table.from_pylist(rows), Path(tmp) / "insights.parquet")
    return {"media": media_done, "rows": len(rows), "client_requests": calls}


def parser_for(doc: str) -> argparse.ArgumentParser:
    """The options every SDK script takes (`run.py` passes them)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--max-media", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=15.0)
    return parser


def print_measured(run: Callable[[], dict[str, Any]]) -> int:
    """Run a harvest, add its wall, CPU and peak RSS, print the JSON line `run.py` reads."""
    # The SDK warns that a string is "not compatible" with list<metric_enum> on every call.
    warnings.simplefilter("ignore", UserWarning)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run()
    result["wall_seconds"] = time.perf_counter() - t0
    result["cpu_seconds"] = time.process_time() - c0
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), file=sys.stdout)
    return 0


def main() -> int:
    args = parser_for(__doc__).parse_args()
    world = json.loads(args.world.read_text())
    return print_measured(lambda: harvest(world, args.accounts, args.max_media, args.max_seconds))


if __name__ == "__main__":
    raise SystemExit(main())
