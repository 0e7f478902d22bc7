"""The lake's pyarrow schemas: the single source of truth for datasets and their columns.

Schemas are fixed here rather than inferred from data so that every run, every API version and
every empty batch writes files that readers can union without casts. `snapshot_date` is not a
column of the files: it is the hive partition folder (`snapshot_date=YYYY-MM-DD`), which readers
add back.
"""

from __future__ import annotations

import pyarrow as pa

from harvester.models import Dataset

TIMESTAMP = pa.timestamp("us", tz="UTC")


SCHEMAS: dict[Dataset, pa.Schema] = {
    Dataset.MEDIA: pa.schema(
        [
            pa.field("account_id", pa.string(), nullable=False),
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("parent_id", pa.string()),
            pa.field("media_type", pa.string()),
            pa.field("media_product_type", pa.string()),
            pa.field("media_timestamp", TIMESTAMP),
            pa.field("permalink", pa.string()),
            pa.field("fetched_at", TIMESTAMP, nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
        ]
    ),
    Dataset.MEDIA_INSIGHTS: pa.schema(
        [
            pa.field("account_id", pa.string(), nullable=False),
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("media_type", pa.string()),
            pa.field("media_product_type", pa.string()),
            pa.field("media_timestamp", TIMESTAMP),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("period", pa.string()),
            pa.field("breakdown", pa.string()),
            pa.field("value", pa.int64()),
            pa.field("api_version", pa.string(), nullable=False),
            pa.field("fetched_at", TIMESTAMP, nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
        ]
    ),
    Dataset.ACCOUNT_INSIGHTS: pa.schema(
        [
            pa.field("account_id", pa.string(), nullable=False),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("period", pa.string()),
            pa.field("end_time", TIMESTAMP),
            pa.field("dimension", pa.string()),
            pa.field("dimension_value", pa.string()),
            pa.field("value", pa.int64()),
            pa.field("api_version", pa.string(), nullable=False),
            pa.field("fetched_at", TIMESTAMP, nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
        ]
    ),
    Dataset.ERRORS: pa.schema(
        [
            pa.field("account_id", pa.string()),
            pa.field("object_id", pa.string()),
            pa.field("stage", pa.string(), nullable=False),
            pa.field("http_status", pa.int32()),
            pa.field("error_code", pa.int32()),
            pa.field("error_subcode", pa.int32()),
            pa.field("message", pa.string()),
            pa.field("fbtrace_id", pa.string()),
            pa.field("fetched_at", TIMESTAMP, nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
        ]
    ),
}
