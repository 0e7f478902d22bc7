"""Live progress (rich bars on a terminal, periodic log lines otherwise) and the end-of-run summary.

rich is the one dependency beyond the chosen stack: it renders live bars and tables on a terminal
and degrades to plain text elsewhere, which a CLI that also runs under cron and Airflow needs.
"""

from __future__ import annotations

import logging
import sys
import time

import anyio
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harvester.harvest.report import RunCounters, RunReport
from harvester.lake import layout

log = logging.getLogger("harvester")

# How often the display is refreshed: a terminal wants smooth bars, a log wants few lines.
TERMINAL_REFRESH_SECONDS = 0.25
LOG_LINE_SECONDS = 10.0


class ProgressDisplay:
    def __init__(self, counters: RunCounters, *, interactive: bool) -> None:
        self._counters = counters
        self._interactive = interactive
        self._console = Console(file=sys.stderr)

    async def run(self) -> None:
        """Render until cancelled (the caller cancels it when the harvest returns)."""
        if self._interactive:
            await self._bars()
        else:
            await self._log_lines()

    async def _bars(self) -> None:
        """Two bars and a line of totals, all within 80 columns."""
        c = self._counters
        bars = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self._console,
        )
        accounts = bars.add_task("accounts", total=c.accounts_total or None, detail="")
        media = bars.add_task("media", total=None, detail="")
        started = time.perf_counter()
        with Live(bars, console=self._console, auto_refresh=False) as live:
            while True:
                elapsed = max(time.perf_counter() - started, 1e-9)
                bars.update(
                    accounts,
                    completed=c.accounts_done,
                    total=c.accounts_total or None,
                    detail=f"failed {c.accounts_failed}",
                )
                bars.update(
                    media,
                    completed=c.media_done,
                    total=max(c.media_listed, 1),
                    detail=f"{c.media_done / elapsed:,.0f}/s",
                )
                totals = Text(
                    f"{c.requests:,} requests, {c.insight_rows:,} insight rows "
                    f"(media and account), {c.error_rows:,} error rows",
                    overflow="ellipsis",
                    no_wrap=True,
                )
                live.update(Group(bars, totals), refresh=True)
                await anyio.sleep(TERMINAL_REFRESH_SECONDS)

    async def _log_lines(self) -> None:
        c = self._counters
        while True:
            await anyio.sleep(LOG_LINE_SECONDS)
            log.info(
                "progress: accounts %d/%d (failed %d), media %d/%d, insight rows %d, errors %d, "
                "requests %d",
                c.accounts_done,
                c.accounts_total,
                c.accounts_failed,
                c.media_done,
                c.media_listed,
                c.insight_rows,
                c.error_rows,
                c.requests,
                extra={"progress": c.snapshot()},
            )

    def summary(self, report: RunReport, *, lake: str) -> None:
        """The report's counts as a table that fits 80 columns; the paths below it, unwrapped
        (a long lake path would otherwise fold the whole table)."""
        table = Table(title=f"harvest {report.run_id}", show_header=False, box=box.SIMPLE)
        table.add_column("what")
        table.add_column("value", justify="right")
        for label, value in report.summary_rows():
            table.add_row(label, value)
        out = Console(file=sys.stdout, width=80)
        out.print(table)
        out.print(f"lake:   {lake}", soft_wrap=True, highlight=False)
        report_path = f"{lake.rstrip('/')}/{layout.run_report(report.run_id)}"
        out.print(f"report: {report_path}", soft_wrap=True, highlight=False)
