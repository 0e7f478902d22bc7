"""Run counters (updated live by the stages) and the final run report written beside the lake."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime

import orjson

from harvester.graph.errors import GraphError
from harvester.models import Dataset


@dataclass
class RunCounters:
    """Live progress, read by the progress display while the stages write it (one event loop)."""

    accounts_total: int = 0
    accounts_done: int = 0
    accounts_failed: int = 0
    media_listed: int = 0
    media_done: int = 0
    insight_rows: int = 0
    error_rows: int = 0
    requests: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    # Expected refusals of conditional metrics (media not shared to Facebook): no error rows.
    conditional_refused: int = 0
    # Accounts no longer asked a condition's metrics after K refusals in a row.
    conditional_accounts_stopped: int = 0

    def count_error(self, error: BaseException) -> None:
        self.error_rows += 1
        self.errors_by_code[error_label(error)] += 1

    def snapshot(self) -> dict[str, int]:
        """The live counts as they stand: a JSON progress line's, a Ray shard's progress post."""
        return {
            "accounts_done": self.accounts_done,
            "accounts_total": self.accounts_total,
            "accounts_failed": self.accounts_failed,
            "media_listed": self.media_listed,
            "media_done": self.media_done,
            "insight_rows": self.insight_rows,
            "error_rows": self.error_rows,
            "requests": self.requests,
        }


@dataclass(frozen=True)
class RunReport:
    run_id: str
    api_version: str
    started_at: datetime
    finished_at: datetime
    wall_seconds: float
    accounts_ok: int
    accounts_failed: int
    media_listed: int
    rows: dict[str, int]
    files: int
    errors_by_code: dict[str, int]
    requests: int
    retries: int
    exit_code: int
    failed_accounts: dict[str, str] = field(default_factory=dict)
    # "done"; "interrupted" (SIGINT, SIGTERM, cancelled); "failed", with the cause in `failure`.
    # Either way what was committed stays, and the same command resumes the job.
    status: str = "done"
    failure: str | None = None
    # Per kind (or ACCOUNT): metrics Meta listed as valid in a rejection that the catalogue
    # lacks, so never asked; `harvester metrics --probe` compares the whole catalogue.
    uncatalogued_metrics: dict[str, list[str]] = field(default_factory=dict)
    # Media that refused the conditional metrics as expected (harvest/conditional.py), and the
    # accounts that stopped being asked them after `[harvest] conditional_refusals_in_a_row`.
    conditional_refused: int = 0
    conditional_accounts_stopped: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @property
    def error_rows(self) -> int:
        return self.rows.get(Dataset.ERRORS.value, 0)

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the end-of-run table; the CLI only lays them out."""
        out = [
            ("run id", self.run_id),
            ("status", self.status),
            ("api version", self.api_version),
            ("accounts ok / failed", f"{self.accounts_ok} / {self.accounts_failed}"),
            ("media listed", f"{self.media_listed:,}"),
        ]
        out += [(f"rows: {name}", f"{count:,}") for name, count in sorted(self.rows.items())]
        out += [(f"errors: {code}", f"{n:,}") for code, n in sorted(self.errors_by_code.items())]
        if self.conditional_refused or self.conditional_accounts_stopped:
            out += [
                ("conditional metrics refused (media not shared)", f"{self.conditional_refused:,}"),
                (
                    "accounts no longer asked them (refusals in a row)",
                    f"{self.conditional_accounts_stopped:,}",
                ),
            ]
        out += [
            (f"not in catalogue: {kind}", ", ".join(names))
            for kind, names in sorted(self.uncatalogued_metrics.items())
        ]
        out += [
            ("requests (retries)", f"{self.requests:,} ({self.retries:,})"),
            ("parquet files", f"{self.files:,}"),
            ("wall time", f"{self.wall_seconds:.1f} s"),
        ]
        return out


def error_label(error: BaseException) -> str:
    """A short, token-free key for counting errors: `code/subcode`, or the error's class name."""
    if isinstance(error, GraphError) and error.code is not None:
        return f"{error.code}/{error.subcode}" if error.subcode else str(error.code)
    return type(error).__name__
