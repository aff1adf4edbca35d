"""sac-report's figures: evaluation return over environment steps, one panel per environment, one line per
configuration (the mean over seeds) with its 95% bootstrap confidence band, the legend under the panels
and within the figure; the aggregate across a suite's tasks, per configuration; and the health panel,
one row per run (value bias, dormant units, entropy against its target), alerts marked."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from sac_runner.run.statistics import bootstrap_ci

if TYPE_CHECKING:
    from sac_runner.run.report import Group, Run


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LEGEND_FONT = 9  # points


def plot_learning_curves(groups: list[Group], out_dir: Path, common: list[str] = ()) -> list[Path]:
    return _save(_pyplot(), learning_curves_figure(groups, common), out_dir, "learning_curves")


def learning_curves_figure(groups: list[Group], common: list[str] = ()):
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    envs = list(dict.fromkeys(g.env for g in groups))
    columns = min(3, len(envs))
    rows = -(-len(envs) // columns)
    width = max(5.6, 4.6 * columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.6 * rows + 0.5), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    configurations = list(dict.fromkeys(g.configuration for g in groups))
    for ax, env in zip(axes.flat, envs):
        for group in (g for g in groups if g.env == env):
            steps, returns = group.curve()
            color = colors[configurations.index(group.configuration) % len(colors)]
            ax.plot(steps, returns.mean(axis=0), color=color, linewidth=1.8, label=group.configuration)
            if len(group.runs) > 1:
                low, high = bootstrap_ci(returns)
                ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_title(env, fontsize=11)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(envs):]:
        ax.set_visible(False)
    seen: dict[str, object] = {}  # one legend entry per configuration, the same color in every panel
    for ax in list(axes.flat)[:len(envs)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    legend_height = _legend_below(fig, list(seen.values()), list(seen.keys()))
    seeds = sorted({len(g.runs) for g in groups})
    title = ("one seed per configuration (no confidence band)" if seeds == [1] else
             f"mean over {'/'.join(map(str, seeds))} seeds, 95% bootstrap confidence band")
    unfinished = sum(1 for g in groups for r in g.runs if r.status)
    if unfinished:
        title += f"; {unfinished} run{'s' if unfinished > 1 else ''} still running or incomplete"
    if common:
        title += "\n" + textwrap.fill("common to all: " + " ".join(common), width=int(width * 14))
    fig.suptitle(title, fontsize=8, color="0.35")
    fig.set_figheight(fig.get_figheight() + legend_height)
    fig.tight_layout(rect=(0, (legend_height + 0.1) / fig.get_figheight(), 1, 1))
    return fig


def _legend_below(fig, handles: list, labels: list[str]) -> float:
    """A figure legend under the panels, no wider than the figure: of up to 3 columns, labels whole or
    wrapped to their column's width (narrower still for a label whose characters run wide), the
    arrangement that fits in the least height. Returns that height in inches, for the figure to make room."""
    renderer = fig.canvas.get_renderer()
    usable = fig.bbox.width * 0.96

    def chars(columns: int) -> int:  # a character is about 0.6 em wide; the line sample takes about 6
        return max(12, int(fig.get_figwidth() * 0.96 * 72 / (0.6 * LEGEND_FONT) / columns) - 6)

    tries = [(columns, width) for columns in range(min(3, len(labels)), 0, -1) for width in (None, chars(columns))]
    tries += [(1, int(chars(1) * shrink)) for shrink in (0.8, 0.6, 0.4)]

    def place(columns: int, width: int | None):
        shown = labels if width is None else [textwrap.fill(label, width) for label in labels]
        return fig.legend(handles, shown, loc="lower center", ncol=columns, frameon=False, fontsize=LEGEND_FONT,
                          bbox_to_anchor=(0.5, 0.0))

    fitting = []
    for columns, width in tries:
        legend = place(columns, width)
        box = legend.get_window_extent(renderer)
        legend.remove()
        if box.width <= usable:
            fitting.append((box.height, columns, width))
    # The lowest; of equal heights the first tried: labels whole, then more columns.
    _, columns, width = min(fitting, key=lambda fit: fit[0]) if fitting else (None, *tries[-1])
    return place(columns, width).get_window_extent(renderer).height / fig.dpi


def plot_aggregate(rows: list[dict[str, object]], configurations: list[str], out_dir: Path) -> list[Path]:
    return _save(_pyplot(), aggregate_figure(rows, configurations), out_dir, "aggregate")


def aggregate_figure(rows: list[dict[str, object]], configurations: list[str]):
    """One row of panels per suite: the IQM and the mean of the normalized scores across its tasks, a
    point and its 95% stratified bootstrap interval per configuration (as rliable's interval plots)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    from sac_runner.run.suites import SCORES

    suites = list(dict.fromkeys(row["suite"] for row in rows))
    most = max(sum(1 for row in rows if row["suite"] == suite) for suite in suites)
    fig, axes = plt.subplots(len(suites), 2, figsize=(9.0, (0.45 * most + 1.4) * len(suites) + 0.4), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for (iqm_ax, mean_ax), suite in zip(axes, suites):
        mine = [row for row in rows if row["suite"] == suite]
        for ax, key, name in ((iqm_ax, "iqm", "IQM"), (mean_ax, "mean", "mean")):
            for y, row in enumerate(mine):
                color = colors[configurations.index(row["configuration"]) % len(colors)]
                low, high = row[f"{key}_ci"]
                ax.plot([low, high], [y, y], color=color, linewidth=6, alpha=0.35, solid_capstyle="butt")
                ax.plot([row[key]], [y], "|", color=color, markersize=14, markeredgewidth=2.5)
            ax.set_yticks(range(len(mine)))
            ax.set_yticklabels([textwrap.fill(row["configuration"], 28) for row in mine] if ax is iqm_ax else [])
            ax.set_ylim(len(mine) - 0.5, -0.5)
            ax.tick_params(axis="y", length=0)
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.set_title(f"{suite}: {name}", fontsize=10)
            ax.set_xlabel(f"normalized score ({SCORES[suite].split(':')[0]})", fontsize=8)
            ax.grid(True, axis="x", alpha=0.3, linewidth=0.6)
            ax.spines[["top", "right", "left"]].set_visible(False)
    tasks = sorted({row["tasks"] for row in rows})
    fig.suptitle(f"final scores across {'/'.join(map(str, tasks))} tasks, all runs pooled; "
                 "bar: 95% stratified bootstrap interval", fontsize=8, color="0.35")
    fig.tight_layout()
    return fig


HEALTH_PANELS = (("value bias / return scale", ("health/value_bias_relative",)),
                 ("dormant fraction", ("health/dormant_critic", "health/dormant_actor")),
                 ("entropy (dashed: target)", ("health/entropy", "health/target_entropy")))


def plot_health(runs: list[Run], out_dir: Path) -> list[Path]:
    """One row per run with health measurements; a red tick at each step where the run raised an alert."""
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    measured = [run for run in runs if run.health]
    fig, axes = plt.subplots(len(measured), 3, figsize=(13.0, 2.4 * len(measured) + 0.4), squeeze=False)
    for row, run in zip(axes, measured):
        for ax, (label, keys) in zip(row, HEALTH_PANELS):
            for key, style in zip(keys, ("-", "--")):
                ax.plot(run.steps, run.health[key], style, linewidth=1.5, label=key.removeprefix("health/"))
            for alert in run.alerts:
                ax.axvline(alert["step"], color="tab:red", alpha=0.5, linewidth=1)
            ax.set_ylabel(label, fontsize=8)
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.grid(True, alpha=0.3, linewidth=0.6)
            ax.spines[["top", "right"]].set_visible(False)
        row[1].legend(fontsize=7, frameon=False)
        row[0].set_title(f"{run.path.name}: {run.env}, {run.configuration}, seed {run.seed}"
                         f"{f' ({len(run.alerts)} alerts)' if run.alerts else ''}", fontsize=8, loc="left")
    for ax in axes[-1]:
        ax.set_xlabel("environment steps")
    fig.tight_layout()
    return _save(plt, fig, out_dir, "health")


def _save(plt, fig, out_dir: Path, name: str) -> list[Path]:
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.savefig(paths[0], dpi=120 if name == "health" else 200)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
