"""How many media_insights rows per second ParquetSink writes, alone (no HTTP, no event loop).

Rows are built as the insights stage builds them (one `Rows` block per media: its 10 values with
the media's and the run's shared columns as the block's head and tail) before the clock starts;
only `sink.write` and `sink.close` are timed (wall and CPU):

    python benchmarks/sink_throughput.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

from harvester.config import OutputSettings
from harvester.lake.fs import open_lake
from harvester.lake.sink import ParquetSink
from harvester.models import Dataset, Rows

METRICS = ("reach", "saved", "likes", "comments", "shares", "total_interactions", "follows")
METRICS += ("profile_visits", "views", "reposts")
# Rows are built and written in slices, so memory holds one slice of tuples, not a million.
SLICE_MEDIA = 20_000


def blocks(first_media: int, count: int, fetched_at: datetime) -> list[Rows]:
    out = []
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for m in range(first_media, first_media + count):
        account = f"178414000{m % 50:08d}"
        media_id = f"179{m:014d}"
        head = (account, media_id, "IMAGE", "FEED", base + timedelta(minutes=m))
        tail = ("v25.0", fetched_at, "20261129T000000Z-abcdef")
        values = [(metric, "lifetime", None, m % 9973, None) for metric in METRICS]
        out.append(Rows(Dataset.MEDIA_INSIGHTS, values, head, tail))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compression", default="zstd")
    args = parser.parse_args()
    media_total = args.rows // len(METRICS)
    fetched_at = datetime.now(UTC)
    timed = cpu = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as lake:
        settings = OutputSettings(lake, compression=args.compression)
        sink = ParquetSink(
            open_lake(lake, compression=args.compression),
            run_id="bench",
            snapshot_date=date.today(),
            settings=settings,
        )
        for first in range(0, media_total, SLICE_MEDIA):
            chunk = blocks(first, min(SLICE_MEDIA, media_total - first), fetched_at)
            t0, c0 = time.perf_counter(), time.process_time()
            for block in chunk:
                sink.write(block)
            timed += time.perf_counter() - t0
            cpu += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        stats = sink.close()
        timed += time.perf_counter() - t0
        cpu += time.process_time() - c0
    rows = stats.rows[Dataset.MEDIA_INSIGHTS.value]
    result = {
        "rows": rows,
        "block_rows": len(METRICS),
        "compression": args.compression,
        "seconds": round(timed, 3),
        "rows_per_s": round(rows / timed),
        # CPU time too: on a shared machine the wall clock counts other processes' turns.
        "cpu_seconds": round(cpu, 3),
        "rows_per_cpu_s": round(rows / cpu),
        "files": stats.files,
        "bytes": stats.bytes,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
