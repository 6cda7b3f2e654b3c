"""The compute-error frontier of a set of runs.

"pareto_bin" follows the study's `pareto_frontier_bins` (LAION-AI/scaling-laws-for-comparison,
`scaling_laws/utils.py`; see `FrontierConfig`): geometric bin edges from the cheapest to the costliest
run, the best run of each left-closed bin, then only bins that improve on every cheaper one, then the
costliest run (which lies in no bin) if it improves too. "pareto" keeps every run better than all
cheaper runs. Runs are ordered by (compute, error) first, as the study does, so within a bin a tie in
error goes to the cheaper run. With rows "study", "pareto_bin" then returns every run matching a
frontier point's compute and any frontier point's error, as the study's mask does (`FrontierConfig.rows`).
"""

from __future__ import annotations

import numpy as np

from curate.compare.config import FrontierConfig
from curate.compare.errors import CompareError


def bin_edges(compute: np.ndarray, config: FrontierConfig) -> np.ndarray:
    """Geometric bin edges from min to max compute: the study's int(log2(max / bin_unit)) edges, or
    `config.bins + 1` edges."""
    low, high = float(np.min(compute)), float(np.max(compute))
    if config.bins is not None:
        n_edges = config.bins + 1
    else:
        n_edges = int(np.log(high / config.bin_unit) / np.log(2)) if high > config.bin_unit else 0
        if n_edges < 2:
            raise CompareError(
                f"the study's bin rule needs compute above {4 * config.bin_unit:g} GFLOPs (largest run: "
                f"{high:g}); give --bins N or --frontier pareto"
            )
    return np.geomspace(low, high, n_edges)


def _improving(errors: np.ndarray) -> np.ndarray:
    """Mask of entries strictly below every earlier entry (the first entry is always kept)."""
    best_before = np.minimum.accumulate(np.r_[np.inf, errors[:-1]])
    return errors < best_before


def _bin_winners(compute: np.ndarray, error: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Positions (into the (compute, error)-sorted arrays) of the best run of each non-empty bin."""
    which = np.searchsorted(edges, compute, side="right") - 1  # bin i: edges[i] <= compute < edges[i+1]
    inside = np.flatnonzero((which >= 0) & (which < len(edges) - 1))
    # stable sort by (bin, error): the first of each bin has the lowest error, ties to the cheaper run
    by_bin = inside[np.lexsort((error[inside], which[inside]))]
    first = np.r_[True, which[by_bin][1:] != which[by_bin][:-1]] if len(by_bin) else np.zeros(0, bool)
    return np.sort(by_bin[first])


def frontier_index(compute: np.ndarray, error: np.ndarray, config: FrontierConfig | None = None) -> np.ndarray:
    """Positions of the frontier runs in the given arrays, ordered by (compute, error).

    The result depends on the row order of the table only through exact ties of (compute, error).
    """
    config = config or FrontierConfig()
    compute = np.asarray(compute, dtype=float)
    error = np.asarray(error, dtype=float)
    if len(compute) == 0:
        return np.zeros(0, dtype=int)
    order = np.lexsort((error, compute))  # by compute, then error
    x, y = compute[order], error[order]
    if config.method == "pareto":
        kept = np.flatnonzero(_improving(y))
    else:
        winners = _bin_winners(x, y, bin_edges(x, config))
        kept = winners[_improving(y[winners])]
        last = int(np.searchsorted(x, x[-1], side="left"))  # the best run at the largest compute
        if y[last] < y[kept].min(initial=np.inf):
            kept = np.r_[kept, last]
    if config.method == "pareto_bin" and config.rows == "study":
        kept = np.flatnonzero(np.isin(x, x[kept]) & np.isin(y, y[kept]))
    return order[kept]
