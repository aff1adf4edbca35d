"""What the terminal shows: a rich progress bar while training, log lines, and summary tables at the end.

In a terminal, lines fit its width. Written to a file, CI or a pipe, nothing is wrapped: a path in a
log line or a table stays whole and copyable (rich would otherwise wrap at 80 columns)."""

from __future__ import annotations

import logging
from datetime import datetime

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

# The UI goes to stdout (errors go to stderr, one line each: see cli/one_line_errors.py).
console = Console()
if not console.is_terminal:
    console.width = 100_000  # tables size to their content, not to 80 columns


class LogLines(RichHandler):
    """The console's log handler (conf/hydra/job_logging/rich.yaml): rich's columns above the progress
    bar in a terminal; elsewhere one plain, unwrapped line per record."""

    def __init__(self, **kwargs):
        super().__init__(console=console, **kwargs)

    def emit(self, record: logging.LogRecord) -> None:
        if self.console.is_terminal:
            return super().emit(record)
        try:
            time = datetime.fromtimestamp(record.created).strftime("%X")
            self.console.print(f"[{time}] {record.levelname:<8} {self.format(record)}", soft_wrap=True,
                               markup=False, highlight=False)
        except Exception:
            self.handleError(record)


class TrainingProgress:
    """Steps done, steps/s, and the latest training-episode and evaluation returns."""

    def __init__(self, total_steps: int, enabled: bool = True, start: int = 0):
        self.progress = Progress(
            BarColumn(bar_width=16), MofNCompleteColumn(),
            TextColumn("{task.fields[sps]:>4.0f} steps/s"),
            TextColumn("train R {task.fields[train_return]}"), TextColumn("eval R {task.fields[eval_return]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=console, disable=not enabled, transient=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=start, sps=0.0,
                                           train_return="-", eval_return="-")

    def update(self, step: int, **fields) -> None:
        formatted = {k: (f"{v:.0f}" if isinstance(v, float) and k.endswith("return") else v) for k, v in fields.items()}
        self.progress.update(self.task, completed=step, **formatted)

    def __enter__(self) -> "TrainingProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()


def key_value_table(title: str, rows: dict[str, object]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows.items():
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    return table
