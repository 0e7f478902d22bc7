"""harvester: bulk Instagram Insights from Meta's Graph API into a Parquet data lake."""

__all__: list[str] = []
