"""sac-report's figures: evaluation return over environment steps, one panel per environment, one line per
configuration (the mean over seeds) with its 95% bootstrap confidence band; and the health panel, one
row per run (value bias, dormant units, entropy against its target), alerts marked."""

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


def plot_learning_curves(groups: list[Group], out_dir: Path, common: list[str] = ()) -> list[Path]:
    plt = _pyplot()
    from matplotlib.ticker import EngFormatter

    envs = list(dict.fromkeys(g.env for g in groups))
    columns = min(3, len(envs))
    rows = -(-len(envs) // columns)
    width = max(5.6, 4.6 * columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.6 * rows + 0.9), squeeze=False)
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
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=min(3, len(seen)), frameon=False,
               fontsize=9, bbox_to_anchor=(0.5, 0.0))
    seeds = sorted({len(g.runs) for g in groups})
    title = ("one seed per configuration (no confidence band)" if seeds == [1] else
             f"mean over {'/'.join(map(str, seeds))} seeds, 95% bootstrap confidence band")
    unfinished = sum(1 for g in groups for r in g.runs if r.status)
    if unfinished:
        title += f"; {unfinished} run{'s' if unfinished > 1 else ''} still running or incomplete"
    if common:
        title += "\n" + textwrap.fill(" ".join(common), width=int(width * 14))
    fig.suptitle(title, fontsize=8, color="0.35")
    legend_rows = -(-len(seen) // min(3, len(seen)))
    fig.tight_layout(rect=(0, (0.35 * legend_rows + 0.1) / fig.get_figheight(), 1, 1))
    return _save(plt, fig, out_dir, "learning_curves")


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
    fig.savefig(paths[0], dpi=200 if name == "learning_curves" else 120)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
