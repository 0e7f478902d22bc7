"""The SDK baseline for the whole default job: media, stories, account insights, as documented.

What `harvester run` does by default, written with `facebook-business` as its docs show, one
account after another in a plain loop (run by `run.py` in a process of its own; prints one JSON
line of figures):

    python benchmarks/sdk_job.py --world WORLD.json --accounts 50 --media-per-account 200

Per account:
1. media insights exactly as `sdk_baseline.py` (the `sdk` variant) asks them;
2. stories: `IGUser(id).get_stories(...)`, then `IGMedia(id).get_insights(...)` per story with the
   metrics and breakdown calls `harvester.harvest.routing.route` gives a story at the world's API
   version (conditional metrics left out, as the `sdk` variant leaves them out for media);
3. account insights for the default 30-day window: `IGUser(id).get_insights(params=...)` once per
   request of the harvester's own plan, `account_insights.plan_requests(...)` with the catalogue's
   account metrics for the version (the same metric groups, periods, one total_value request per
   day and breakdown, series, online followers and demographics), so both do the same work.

Capped like the `sdk` variant: `--max-media` / `--max-seconds` bound the media loop only; an
account begun gets its stories and its account insights in full. The whole-job rate is per
account (the loop is sequential, so accounts add up): each account's media time is extrapolated
from its capped part to all its media, then its stories and account insights are added:

    media/s = sum(M + S_a) / sum(t_media_a / n_a * M + t_stories_a + t_account_a)

with M media per account (`--media-per-account`), S_a its stories, n_a the media harvested in
t_media_a. So each media carries its share (1 / (M + S_a)) of its account's account insights,
as in the harvester's `job` variant, whose media/s is all media and stories over the whole run.
Calls per account are extrapolated the same way.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from facebook_business.adobjects.iguser import IGUser
from sdk_baseline import MEDIA_FIELDS, api_for, insight_rows, media_rows, parser_for, print_measured

from harvester.catalog import ApiVersion, load_catalog
from harvester.harvest.account_insights import AccountRequest, account_window, plan_requests


def account_plan(api_version: str, now: datetime) -> list[AccountRequest]:
    """The harvester's requests for one account's default window (no --since/--until)."""
    metrics = load_catalog().account_metrics_for(ApiVersion.parse(api_version))
    since, until = account_window(None, None, now=now)
    return plan_requests(metrics, since, until, now=now)


def harvest(
    world: dict[str, Any], accounts: int, per_account: int, max_media: int, max_seconds: float
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    plan = account_plan(world["api_version"], datetime.now(UTC))
    media_done = stories_done = calls = 0
    est_media = est_seconds = est_calls = 0.0
    phases = {"media": 0.0, "stories": 0.0, "account": 0.0}
    deadline = time.perf_counter() + max_seconds
    done_accounts = 0
    for account in world["accounts"][:accounts]:
        api = api_for(world, account)
        user = IGUser(account["id"], api=api)
        t0, n = time.perf_counter(), 0
        for media in user.get_media(fields=MEDIA_FIELDS, params={"limit": 100}):
            if media_done >= max_media or time.perf_counter() > deadline:
                break
            media_rows(api, media, world["api_version"], rows)
            media_done += 1
            n += 1
        t1, media_calls = time.perf_counter(), api.get_num_requests_attempted()
        stories = list(user.get_stories(fields=MEDIA_FIELDS, params={"limit": 100}))
        for story in stories:
            media_rows(api, story, world["api_version"], rows)
        t2, story_calls = time.perf_counter(), api.get_num_requests_attempted() - media_calls
        for request in plan:
            insight_rows(account["id"], user.get_insights(params=request.params()), rows)
        t3 = time.perf_counter()
        account_calls = api.get_num_requests_attempted() - media_calls - story_calls
        calls += api.get_num_requests_attempted()
        stories_done += len(stories)
        done_accounts += 1
        phases["media"] += t1 - t0
        phases["stories"] += t2 - t1
        phases["account"] += t3 - t2
        scale = per_account / max(n, 1)
        est_media += per_account + len(stories)
        est_seconds += (t1 - t0) * scale + (t2 - t1) + (t3 - t2)
        est_calls += media_calls * scale + story_calls + account_calls
        if media_done >= max_media or time.perf_counter() > deadline:
            break
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(pa.Table.from_pylist(rows), Path(tmp) / "insights.parquet")
    return {
        "media": media_done + stories_done,
        "rows": len(rows),
        "client_requests": calls,
        "whole_job": {
            "accounts_done": done_accounts,
            "media_harvested": media_done,
            "stories_harvested": stories_done,
            "account_requests_per_account": len(plan),
            "phase_seconds": {key: round(value, 3) for key, value in phases.items()},
            "media_per_s": round(est_media / est_seconds, 1) if est_seconds else 0.0,
            "calls_per_account": round(est_calls / done_accounts, 1) if done_accounts else 0.0,
            "calls_per_media": round(est_calls / est_media, 3) if est_media else 0.0,
        },
    }


def main() -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--media-per-account", type=int, required=True)
    args = parser.parse_args()
    world = json.loads(args.world.read_text())
    return print_measured(
        lambda: harvest(
            world, args.accounts, args.media_per_account, args.max_media, args.max_seconds
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
