"""Read a table of training runs and bring it to one tidy form, one row per run and metric.

Tidy columns: family, dataset, schedule, arch, samples_seen, compute (GFLOPs), metric, value, error.
A curve is one (metric, dataset, family, schedule); `split_curves` groups the tidy table by it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curate.compare.config import PRESETS, Preset, RunColumns
from curate.compare.errors import CompareError

log = logging.getLogger(__name__)

TIDY = ["family", "dataset", "schedule", "arch", "samples_seen", "compute", "metric", "value", "error"]
ALL = "all"  # the key of a curve dimension the table does not have


@dataclass(frozen=True, order=True)
class CurveKey:
    """What one fitted curve describes."""

    metric: str
    dataset: str
    family: str
    schedule: str

    @property
    def label(self) -> str:
        return "/".join((self.family, self.dataset, self.schedule, self.metric))

    def differs_in(self, other: CurveKey) -> list[str]:
        fields = ("metric", "dataset", "family", "schedule")
        return [f for f in fields if getattr(self, f) != getattr(other, f)]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or parquet file (chosen by suffix) or raise CompareError."""
    path = Path(path)
    if not path.is_file():
        raise CompareError(f"runs table {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except Exception as exc:  # pandas and pyarrow raise many types for a malformed file
        first_line = (str(exc).splitlines() or [""])[0]
        raise CompareError(f"cannot read runs table {path}: {type(exc).__name__}: {first_line}") from exc
    raise CompareError(f"runs table {path} must be .csv, .tsv or .parquet, not {suffix or 'no suffix'}")


def detect_preset(table: pd.DataFrame) -> Preset:
    """The first preset whose columns the table has, or CompareError."""
    for preset in PRESETS.values():
        if set(preset.columns.required()) <= set(table.columns):
            return preset
    raise CompareError(
        f"table columns match no preset ({', '.join(PRESETS)}); name them with --preset or the column "
        f"options (found: {', '.join(map(str, table.columns[:20]))})"
    )


def detect_columns(table: pd.DataFrame) -> RunColumns:
    """The column mapping of the first preset whose columns the table has, or CompareError."""
    return detect_preset(table).columns


def _numeric(table: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() & table[column].notna()
    if bad.any():
        example = table[column][bad].iloc[0]
        raise CompareError(f"column {column!r} must be numeric; found {example!r}")
    return values.to_numpy(dtype=float)


def _text(table: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series(ALL, index=table.index)
    return table[column].astype(str)


def _filter(table: pd.DataFrame, columns: RunColumns) -> pd.DataFrame:
    for column, value in columns.filters:
        table = table[table[column].astype(str) == str(value)]
    if table.empty:
        wanted = ", ".join(f"{c}={v}" for c, v in columns.filters)
        raise CompareError(f"no runs match the filters {wanted}; check the values with the table's contents")
    return table


def tidy_runs(table: pd.DataFrame, columns: RunColumns) -> pd.DataFrame:
    """The tidy table (see module doc) from a raw runs table, or CompareError."""
    missing = [c for c in columns.required() if c not in table.columns]
    if missing:
        raise CompareError(
            f"runs table has no column {', '.join(map(repr, missing))}; name the right one with the column "
            f"options (found: {', '.join(map(str, table.columns[:20]))})"
        )
    table = _filter(table, columns)
    samples = _numeric(table, columns.samples_seen)
    if columns.compute:
        compute = _numeric(table, columns.compute)
    else:
        compute = _numeric(table, columns.gflops_per_sample) * samples
    base = pd.DataFrame(
        {
            "family": _text(table, columns.family).to_numpy(),
            "dataset": _text(table, columns.dataset).to_numpy(),
            "schedule": _text(table, columns.schedule).to_numpy(),
            "arch": _text(table, columns.arch).to_numpy(),
            "samples_seen": samples,
            "compute": compute * columns.compute_scale,
        }
    )
    parts = [_metric_rows(base, table, metric, columns.metric_is_error) for metric in columns.metrics]
    if columns.metric_label:
        parts[0]["metric"] = columns.metric_label
    tidy = pd.concat(parts, ignore_index=True)
    usable = np.isfinite(tidy["error"]) & np.isfinite(tidy["compute"]) & (tidy["compute"] > 0)
    if not usable.all():
        log.warning("dropping %d runs without a metric value or a positive compute", int((~usable).sum()))
        tidy = tidy[usable].reset_index(drop=True)
    if tidy.empty:
        raise CompareError("no run has both a metric value and a positive compute")
    return tidy[TIDY]


def _metric_rows(base: pd.DataFrame, table: pd.DataFrame, metric: str, is_error: bool) -> pd.DataFrame:
    value = _numeric(table, metric)
    finite = value[np.isfinite(value)]
    if not is_error and finite.size and (finite.min() < 0 or finite.max() > 1):
        raise CompareError(
            f"metric {metric!r} must be a fraction in [0, 1] (accuracy or recall); "
            "pass --metric-is-error if it already is an error or loss"
        )
    rows = base.copy()
    rows["metric"] = metric
    rows["value"] = value
    rows["error"] = value if is_error else 1.0 - value
    return rows


def load_runs(path: str | Path, columns: RunColumns | None = None) -> pd.DataFrame:
    """Read and tidy a runs table; `columns=None` picks the first preset that fits the table."""
    table = read_table(path)
    if table.empty:
        raise CompareError(f"runs table {path} has no rows")
    columns = columns or detect_columns(table)
    tidy = tidy_runs(table, columns)
    log.info("read %d runs x metrics from %s", len(tidy), path)
    return tidy


def split_curves(tidy: pd.DataFrame) -> dict[CurveKey, pd.DataFrame]:
    """One sub-table per curve, in a stable (sorted) order."""
    groups = tidy.groupby(["metric", "dataset", "family", "schedule"], sort=True)
    return {CurveKey(*map(str, key)): group.reset_index(drop=True) for key, group in groups}


def select_curves(tidy: pd.DataFrame, substrings: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Rows of curves whose label contains every substring; CompareError if none is left."""
    if not substrings:
        return tidy
    labels = tidy["family"] + "/" + tidy["dataset"] + "/" + tidy["schedule"] + "/" + tidy["metric"]
    keep = np.ones(len(tidy), dtype=bool)
    for text in substrings:
        keep &= labels.str.contains(text, regex=False).to_numpy()
    if not keep.any():
        raise CompareError(
            f"no curve id contains {' and '.join(map(repr, substrings))}; ids look like {labels.iloc[0]}"
        )
    return tidy[keep].reset_index(drop=True)
