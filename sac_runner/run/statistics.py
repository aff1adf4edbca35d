"""Statistics over seeds for sac-report: interquartile mean and bootstrap confidence intervals
(Agarwal et al., 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice"), and
the aggregate across the tasks of a suite as that paper's rliable library computes it: the IQM of the
normalized scores of every run on every task, pooled, with a stratified bootstrap interval.

Written with NumPy rather than by depending on rliable: the estimators are a few lines each, and
rliable would bring SciPy and arch (its bootstrap) into a package that otherwise needs neither. IQM
trims as rliable's (SciPy's trim_mean with proportion 0.25: floor(n / 4) values from each end), and
the interval is, as rliable's default, the percentile interval of the bootstrap estimates.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


def interquartile_means(rows: np.ndarray) -> np.ndarray:
    """The interquartile mean of each row of an array (the last axis)."""
    ordered = np.sort(np.asarray(rows, dtype=float), axis=-1)
    cut = ordered.shape[-1] // 4
    return ordered[..., cut:ordered.shape[-1] - cut].mean(axis=-1)


def interquartile_mean(values: np.ndarray) -> float:
    """The mean of the middle 50% (Agarwal et al., 2021): a quarter trimmed from each end; for fewer
    than four seeds nothing is trimmed, so it equals the mean."""
    return float(interquartile_means(np.ravel(values)))


def bootstrap_ci(samples: np.ndarray, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean over seeds (axis 0), for each column."""
    samples = np.asarray(samples, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(samples), size=(resamples, len(samples)))
    means = samples[picks].mean(axis=1)  # (resamples, columns)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return np.percentile(means, tail, axis=0), np.percentile(means, 100.0 - tail, axis=0)


def stratified_bootstrap_ci(per_task: list[np.ndarray], statistic: Callable[[np.ndarray], np.ndarray] = interquartile_means,
                            confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `statistic` (of each row: all runs of all tasks pooled) over bootstrap
    resamples that draw each task's runs with replacement from that task's runs alone, as many as it
    has (Agarwal et al., 2021, section 4: the tasks are fixed, the runs are the random sample). The
    fixed seed makes a report reproducible."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([np.asarray(scores, dtype=float)[rng.integers(0, len(scores), size=(resamples, len(scores)))]
                             for scores in per_task], axis=1)  # (resamples, runs of all tasks)
    estimates = statistic(pooled)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return float(np.percentile(estimates, tail)), float(np.percentile(estimates, 100.0 - tail))


def row_means(rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows, dtype=float).mean(axis=-1)


def aggregate(per_task: list[np.ndarray]) -> dict[str, object]:
    """IQM, mean and median of the normalized scores of all runs of all tasks pooled, the first two
    with their 95% stratified bootstrap intervals; and how many tasks and runs they pool."""
    pooled = np.concatenate([np.ravel(scores) for scores in per_task])
    return {"tasks": len(per_task), "runs": len(pooled),
            "iqm": interquartile_mean(pooled), "iqm_ci": stratified_bootstrap_ci(per_task),
            "mean": float(pooled.mean()), "mean_ci": stratified_bootstrap_ci(per_task, row_means),
            "median": float(np.median(pooled))}


def summary(values: list[float]) -> dict[str, float]:
    """Mean, standard deviation, interquartile mean and 95% bootstrap interval of the mean over seeds."""
    v = np.asarray(values, dtype=float)
    low, high = bootstrap_ci(v[:, None])
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "iqm": interquartile_mean(v), "n": len(v), "ci_low": float(low[0]), "ci_high": float(high[0])}
