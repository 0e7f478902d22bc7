"""harvester: bulk Instagram Insights from Meta's Graph API into a Parquet data lake.

The public Python API for orchestrators (Airflow, Dagster, notebooks)::

    report = anyio.run(run_harvest, load_config("my.toml"))
"""

from harvester.config import Config, ConfigError, load_config, parse_config
from harvester.harvest.pipeline import run_harvest
from harvester.harvest.report import RunReport
from harvester.models import HarvestWindow

__all__ = [
    "Config",
    "ConfigError",
    "HarvestWindow",
    "RunReport",
    "load_config",
    "parse_config",
    "run_harvest",
]
