"""Small statistics: percentiles of samples, mean and spread of repetitions."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["percentile", "spread", "summarize"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p95, min, max and count of samples."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values),
        "max": max(values),
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean of repetitions and their spread: half the range, as a fraction of the mean."""
    if not values:
        return {"n": 0, "mean": math.nan, "spread": math.nan}
    mean = statistics.fmean(values)
    half_range = (max(values) - min(values)) / 2
    return {
        "n": len(values),
        "mean": mean,
        "spread": half_range / mean if mean else math.nan,
        "min": min(values),
        "max": max(values),
    }
