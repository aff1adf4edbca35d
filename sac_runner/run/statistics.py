"""Statistics over seeds for sac-report: interquartile mean and bootstrap confidence intervals
(Agarwal et al., 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice")."""

from __future__ import annotations

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


def interquartile_mean(values: np.ndarray) -> float:
    """The mean of the middle 50% (Agarwal et al., 2021): a quarter trimmed from each end; for fewer
    than four seeds nothing is trimmed, so it equals the mean."""
    ordered = np.sort(np.asarray(values, dtype=float))
    cut = int(np.floor(0.25 * len(ordered)))
    return float(ordered[cut:len(ordered) - cut].mean())


def bootstrap_ci(samples: np.ndarray, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean over seeds (axis 0), for each column."""
    samples = np.asarray(samples, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(samples), size=(resamples, len(samples)))
    means = samples[picks].mean(axis=1)  # (resamples, columns)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return np.percentile(means, tail, axis=0), np.percentile(means, 100.0 - tail, axis=0)


def summary(values: list[float]) -> dict[str, float]:
    """Mean, standard deviation, interquartile mean and 95% bootstrap interval of the mean over seeds."""
    v = np.asarray(values, dtype=float)
    low, high = bootstrap_ci(v[:, None])
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "iqm": interquartile_mean(v), "n": len(v), "ci_low": float(low[0]), "ci_high": float(high[0])}
