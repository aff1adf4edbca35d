"""What the terminal shows: a rich progress bar while training and summary tables at the end."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

# The UI goes to stdout (errors go to stderr, one line each: see errors.py).
console = Console()


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
