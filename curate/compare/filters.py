"""Drop the runs a curve's frontier must not see, counting each drop by its reason.

The filters are those of the study's `filter_data` (see `RunFilter` and `STUDY_FILTER`), applied in its
order: maximum compute, minimum compute, maximum samples seen, then the divergence filter of large runs;
each is off unless set.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curate.compare.config import RunFilter

log = logging.getLogger(__name__)

ABOVE_MAX_COMPUTE = "above_max_compute"
BELOW_MIN_COMPUTE = "below_min_compute"
ABOVE_MAX_SAMPLES_SEEN = "above_max_samples_seen"
DIVERGED = "diverged"


def filter_runs(runs: pd.DataFrame, config: RunFilter, metric: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The runs (a tidy table, see runs.py) that pass `config`, and how many each filter dropped.

    Only filters that dropped something appear in the counts.
    """
    compute = runs["compute"].to_numpy(dtype=float)
    samples = runs["samples_seen"].to_numpy(dtype=float)
    error = runs["error"].to_numpy(dtype=float)
    checks: list[tuple[str, np.ndarray]] = []
    if config.max_compute is not None:
        checks.append((ABOVE_MAX_COMPUTE, compute <= config.max_compute))
    if config.min_compute is not None:
        checks.append((BELOW_MIN_COMPUTE, compute >= config.min_compute))
    if config.max_samples_seen is not None:
        checks.append((ABOVE_MAX_SAMPLES_SEEN, samples <= config.max_samples_seen))
    if config.diverges(metric):
        checks.append((DIVERGED, (compute <= config.divergence_compute) | (error < config.divergence_error)))
    keep = np.ones(len(runs), dtype=bool)
    dropped: dict[str, int] = {}
    for reason, passes in checks:
        count = int(np.sum(keep & ~passes))
        if count:
            dropped[reason] = count
        keep &= passes
    if dropped:
        log.info("%s: dropped %s", metric, ", ".join(f"{n} {reason}" for reason, n in dropped.items()))
    return runs[keep].reset_index(drop=True), dropped
