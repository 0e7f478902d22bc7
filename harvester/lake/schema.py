"""The lake's pyarrow schemas: the single source of truth for datasets and their columns.

Schemas are fixed here rather than inferred from data so that every run, every API version and
every empty batch writes files that readers can union without casts. `snapshot_date` is not a
column of the files: it is the hive partition folder (`snapshot_date=YYYY-MM-DD`), which readers
add back.

Insight values: `value` (int64) holds every exact integer, so `sum(value)` over counts stays exact
and every query written before fractional metrics keeps its meaning; `value_float` (float64, added
with issue 14) holds every other number, a fractional metric's (reels_skip_rate) always, with
`value` null. One column for both: `coalesce(value, value_float)`. Files written before
`value_float` existed lack the column: `conform` gives their tables the current schema, and readers
union by name (README, "The value columns").
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
            # From here to total_views_count: `models.MediaDetails`, added with issue 16.
            pa.field("caption", pa.string()),
            pa.field("like_count", pa.int64()),
            pa.field("comments_count", pa.int64()),
            pa.field("media_url", pa.string()),
            pa.field("thumbnail_url", pa.string()),
            pa.field("shortcode", pa.string()),
            pa.field("username", pa.string()),
            pa.field("is_comment_enabled", pa.bool_()),
            pa.field("is_shared_to_feed", pa.bool_()),
            pa.field("reposts_count", pa.int64()),
            pa.field("saved_count", pa.int64()),
            pa.field("shares_count", pa.int64()),
            pa.field("total_like_count", pa.int64()),
            pa.field("total_comments_count", pa.int64()),
            pa.field("total_views_count", pa.int64()),
            pa.field("source", pa.string()),
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
            pa.field("value_float", pa.float64()),
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
            pa.field("value_float", pa.float64()),
            pa.field("api_version", pa.string(), nullable=False),
            pa.field("fetched_at", TIMESTAMP, nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
        ]
    ),
    Dataset.ACCOUNTS: pa.schema(
        [
            pa.field("account_id", pa.string(), nullable=False),
            pa.field("username", pa.string()),
            pa.field("name", pa.string()),
            pa.field("biography", pa.string()),
            pa.field("website", pa.string()),
            pa.field("followers_count", pa.int64()),
            pa.field("follows_count", pa.int64()),
            pa.field("media_count", pa.int64()),
            pa.field("profile_picture_url", pa.string()),
            pa.field("source", pa.string(), nullable=False),
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


def conform(table: pa.Table, dataset: Dataset) -> pa.Table:
    """`table` (read from a file of any schema version) with the current schema of `dataset`:
    columns added since the file was written (`value_float`) come back null, the rest are cast.
    Raises ValueError when the table lacks a column the schema requires."""
    schema = SCHEMAS[dataset]
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise ValueError(f"{dataset.value}: a file without the required column {field.name}")
    return pa.Table.from_arrays(columns, schema=schema)
