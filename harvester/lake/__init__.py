"""Durable state: the lake, its schemas, the Parquet sink, jobs, epochs, sweeps, compaction."""
