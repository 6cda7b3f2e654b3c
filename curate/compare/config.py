"""Configuration of `curate compare`: column mapping of a runs table and the fit settings.

Every setting that decides a published number names where it comes from. The frontier and fit
defaults are the procedure of arXiv 2506.04598 (Nezhurina et al., "Scaling Laws for Robust Comparison
of Open Foundation Language-Vision Models and Datasets") as its code runs it for Figure 1:
LAION-AI/scaling-laws-for-comparison, `scripts/fig1.sh` calling `scaling_laws/main.py`
(`pareto_frontier_bins` in `utils.py`, the `saturation_both` start grid in `configs.py`). Its run
filters (`filter_data`) are `STUDY_FILTER`, applied by the presets of the study's own tables only:
`RunFilter()` keeps every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# 2506.04598, Figure 1 fit of openCLIP and openMaMMUT on DataComp-1.4B, ImageNet-1k zero-shot error vs
# GFLOPs, as written by the study's code to `scaling_laws/derived_scaling_laws/fig1/tables/
# imagenet1k_curve_fit_saturation_both_..._acc1_clip_mammut.tex` (commit 53454c5): a, ln b, -c, d.
STUDY_OPENCLIP_DATACOMP = {"A": 57.862083, "lnB": 18.391321, "alpha": 0.226604, "E": 0.111169}
STUDY_OPENMAMMUT_DATACOMP = {"A": 125.356572, "lnB": 19.289384, "alpha": 0.255670, "E": 0.101112}


@dataclass(frozen=True)
class RunColumns:
    """Which columns of a runs table hold what. `None` means the table has no such column.

    Compute is `compute` (total GFLOPs of the run) if given, else `gflops_per_sample` times
    `samples_seen`; either is multiplied by `compute_scale` (2.0 turns GMACs into GFLOPs).
    Metrics are accuracies or recalls (error = 1 - metric) unless `metric_is_error`.
    `filters` keeps only rows where a column equals a value (compared as text). `metric_label`
    names the metric in reports when the metric column has a generic name (one metric only).
    """

    family: str | None = "namespace"
    dataset: str | None = "pretrain_dataset"
    schedule: str | None = "lr_scheduler"
    arch: str | None = "model_simple"
    samples_seen: str = "samples_seen"
    compute: str | None = "gflops"
    gflops_per_sample: str | None = "model_gflops"
    metrics: tuple[str, ...] = ("acc1",)
    metric_is_error: bool = False
    compute_scale: float = 1.0
    filters: tuple[tuple[str, str], ...] = ()
    metric_label: str | None = None

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("RunColumns needs at least one metric column")
        if not self.samples_seen:
            raise ValueError("RunColumns needs a samples-seen column")
        if not (self.compute or self.gflops_per_sample):
            raise ValueError("RunColumns needs a total-compute or a GFLOPs-per-sample column")
        if self.metric_label and len(self.metrics) != 1:
            raise ValueError("metric_label names a single metric; drop it or use one metric column")

    def required(self) -> tuple[str, ...]:
        """Columns that must exist in the table for this mapping to work."""
        names = [self.family, self.dataset, self.schedule, self.arch, self.samples_seen, *self.metrics]
        names += [self.compute] if self.compute else [self.gflops_per_sample]
        names += [col for col, _ in self.filters]
        return tuple(dict.fromkeys(n for n in names if n))


# The per-run table of 2506.04598 (`scaling_laws/data/segmentation_results.parquet` of
# LAION-AI/scaling-laws-for-comparison): `namespace` is the family (clip, mammut), `model_simple` the
# architecture, `gflops` the run's total compute.
STUDY_RUNS = RunColumns()

# The best-per-cell table parsed from the study's `overview.ipynb` (long format: one row per task,
# metric, dataset, schedule, model and samples-seen scale). Defaults to ImageNet-1k top-1.
BEST_PER_CELL = RunColumns(
    family="model_type",
    dataset="pretrain_dataset",
    schedule="lr_scheduler",
    arch="arch",
    samples_seen="total_samples_seen",
    compute="gflops_total",
    gflops_per_sample="gflops_per_sample",
    metrics=("value_rounded3",),
    filters=(("downstream_dataset", "imagenet1k"), ("metric", "acc1")),
    metric_label="imagenet1k/acc1",
)

# Cherti et al. 2023 (LAION-AI/scaling-laws-openclip): one openCLIP family, compute in GMACs.
CHERTI2023 = RunColumns(
    family=None,
    dataset="upstream_dataset",
    schedule=None,
    arch="arch",
    samples_seen="samples_seen",
    compute="gmacs_total",
    gflops_per_sample="gmacs",
    metrics=("acc1",),
    compute_scale=2.0,  # one multiply-accumulate is two FLOPs
    filters=(("downstream_dataset", "imagenet1k"),),
    metric_label="imagenet1k/acc1",
)


@dataclass(frozen=True)
class RunFilter:
    """Which runs of a curve enter its frontier; `None` switches a filter off.

    The defaults switch every filter off, so that a table of one's own runs keeps all of them; the
    study's filters are `STUDY_FILTER`, which the presets of the study's own tables apply (see
    `Preset`). Above `divergence_compute` GFLOPs, a run whose error is `divergence_error` or more has
    diverged and is dropped, for the metrics named in `divergence_metrics` only (a metric matches an
    entry equal to it or to its prefix before '/'; `acc1` is ImageNet-1k top-1 in the study's per-run
    table).
    """

    max_compute: float | None = None
    min_compute: float | None = None
    max_samples_seen: float | None = None
    divergence_compute: float | None = None
    divergence_error: float = 0.7
    divergence_metrics: tuple[str, ...] = ("imagenet1k", "mscoco_captions", "acc1")

    @property
    def is_off(self) -> bool:
        """Whether no filter is on (every run is kept)."""
        limits = (self.max_compute, self.min_compute, self.max_samples_seen, self.divergence_compute)
        return all(limit is None for limit in limits)

    def diverges(self, metric: str) -> bool:
        """Whether the divergence filter applies to a curve of this metric."""
        if self.divergence_compute is None:
            return False
        return metric in self.divergence_metrics or metric.split("/")[0] in self.divergence_metrics

    def describe(self) -> str:
        """One line of text: which filters are on, with their limits."""
        parts = []
        if self.max_compute is not None:
            parts.append(f"compute <= {self.max_compute:g} GFLOPs")
        if self.min_compute is not None:
            parts.append(f"compute >= {self.min_compute:g} GFLOPs")
        if self.max_samples_seen is not None:
            parts.append(f"samples seen <= {self.max_samples_seen:g}")
        if self.divergence_compute is not None:
            parts.append(
                f"above {self.divergence_compute:g} GFLOPs error < {self.divergence_error:g} "
                f"(metrics {', '.join(self.divergence_metrics)})"
            )
        return ", ".join(parts) or "every run kept"


# No filter: every run of the table enters its curve's frontier.
NO_FILTER = RunFilter()

# The study's `filter_data` with the arguments of `scripts/fig1.sh` (LAION-AI/scaling-laws-for-comparison,
# `scaling_laws/main.py` and `utils.py`): compute at most `--max_x` 1e12 GFLOPs (the default of
# `main.py`, applied before anything else), at least `--min_flops` 1e6, samples seen at most
# `--max_samples_seen` 1e10, and the divergence filter that `filter_data` applies to ImageNet-1k and
# MSCOCO retrieval: above 1e11 GFLOPs, a run whose error is 0.7 or more has diverged and is dropped.
# Right for the study's own tables; a table of other runs would silently lose its larger runs to it.
STUDY_FILTER = RunFilter(
    max_compute=1e12,
    min_compute=1e6,
    max_samples_seen=1e10,
    divergence_compute=1e11,
    divergence_error=0.7,
    divergence_metrics=("imagenet1k", "mscoco_captions", "acc1"),
)

FILTER_SETS: dict[str, RunFilter] = {"study": STUDY_FILTER, "none": NO_FILTER}


def filter_set_name(filters: RunFilter) -> str:
    """The name of `filters` in reports: "study", "none" (every run kept) or "custom"."""
    if filters == STUDY_FILTER:
        return "study"
    return "none" if filters.is_off else "custom"


@dataclass(frozen=True)
class Preset:
    """A kind of runs table: its column mapping and the run filters its numbers are meant with.

    The study's own tables come with the study's filters (`STUDY_FILTER`), so that fitting them
    reproduces the study; every other table keeps all its runs unless asked otherwise.
    """

    name: str
    columns: RunColumns
    run_filter: RunFilter
    description: str

    def config(self, **changes: object) -> CompareConfig:
        """A CompareConfig with this preset's columns and run filter (`changes` set the other fields)."""
        return CompareConfig(columns=self.columns, filters=self.run_filter, preset=self.name, **changes)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("runs", STUDY_RUNS, STUDY_FILTER, "the study's per-run parquet"),
        Preset("best-per-cell", BEST_PER_CELL, STUDY_FILTER, "the study's best-per-cell table"),
        Preset("cherti2023", CHERTI2023, NO_FILTER, "Cherti et al. 2023's zero-shot results"),
    )
}

# Any other table: the column options name its columns (on top of the study's names); no filter.
GENERIC = Preset("generic", STUDY_RUNS, NO_FILTER, "a table of one's own runs, columns named by the options")


FRONTIER_METHODS = ("pareto_bin", "pareto")
FRONTIER_ROWS = ("study", "points")


@dataclass(frozen=True)
class FrontierConfig:
    """Compute-error frontier of a curve's runs.

    "pareto_bin" is the study's `pareto_frontier_bins` (`utils.py`): bin edges geometrically spaced
    from the cheapest to the costliest run, the best run of each bin [edge_i, edge_i+1), then only
    bins that improve on every cheaper one, then the costliest run if it improves too. `bins=None`
    is the study's rule, int(log2(max compute / `bin_unit`)) edges (one bin fewer); an int asks for
    that many bins. "pareto" is the plain Pareto frontier (every run better than all cheaper runs).

    `rows` says which runs stand for "pareto_bin"'s points. "study" is what pareto_frontier_bins returns:
    every run whose compute is one of the frontier points' computes and whose error is one of their
    errors, matched independently. In a per-run table that can add a run that is not on the frontier:
    in the study's openCLIP / DataComp-1.4B fit, a ViT-S-16 run at 1.28M samples whose error (0.98696)
    equals that of the ViT-S-32 frontier point, which moves the fitted A by 2.8%; the published
    parameters need it. "points" keeps one run per frontier point.
    """

    method: str = "pareto_bin"
    bins: int | None = None
    bin_unit: float = 1500.0  # GFLOPs; the study's `flop_val` in pareto_frontier_bins
    rows: str = "study"

    def __post_init__(self) -> None:
        if self.method not in FRONTIER_METHODS:
            raise ValueError(f"frontier method must be one of {', '.join(FRONTIER_METHODS)}, not {self.method!r}")
        if self.bins is not None and self.bins < 1:
            raise ValueError(f"bins must be at least 1, not {self.bins}")
        if self.rows not in FRONTIER_ROWS:
            raise ValueError(f"frontier rows must be one of {', '.join(FRONTIER_ROWS)}, not {self.rows!r}")


@dataclass(frozen=True)
class StudyGrid:
    """The study's starting points for `saturation_both` (`configs.py`, `initial_guess_param_grid`):
    every combination of np.arange(*a), np.arange(*b), np.arange(*c), np.arange(*d) for the law
    a * (C + b)^c + d, each solved by scipy's curve_fit (bounds a, b, d >= 0, c <= 0, so trust-region
    reflective) with `max_nfev` evaluations; 20 * 20 * 4 * 2 = 3,200 starts."""

    a: tuple[float, float, float] = (0.0, 100.0, 5.0)
    b: tuple[float, float, float] = (0.0, 100.0, 5.0)
    c: tuple[float, float, float] = (-0.2, 0.0, 0.05)
    d: tuple[float, float, float] = (0.0, 0.001, 0.0005)
    max_nfev: int = 1_000_000


START_GRIDS = ("fast", "study")


@dataclass(frozen=True)
class FitConfig:
    """L(C) = A * (C + B)^-alpha + E by bounded least squares, best of a grid of starting points.

    `start_grid="fast"` (default): parameters fitted as (ln A, ln B, alpha, E) from a small grid over
    ln B, alpha and E (each start's A puts it through the cheapest point), all starts solved at once by
    a vectorised Levenberg-Marquardt. `start_grid="study"`: the study's 3,200 scipy curve_fit starts
    (`study_grid`), minutes per curve; bench/bench_compare.py checks the two reach the same optimum.
    The fast path's bounds are a little narrower than the study's (B >= 1 rather than 0, alpha <= 5,
    E at most the largest observed error); they only matter for an optimum outside them.
    `irreducible=False` fixes E = 0 and `offset=False` fixes B = 0 (with both, the pure power law of
    Cherti et al. 2023). `space` is where residuals are taken: "linear" (on the error, as the study
    does) or "log".
    """

    irreducible: bool = True
    offset: bool = True
    space: str = "linear"
    start_grid: str = "fast"
    ln_b_grid: tuple[float, ...] = (0.0, 8.0, 14.0, 20.0)
    alpha_grid: tuple[float, ...] = (0.1, 0.3, 0.6)
    e_grid: tuple[float, ...] = (0.0, 0.5)  # fractions of the smallest observed error
    ln_a_bounds: tuple[float, float] = (-30.0, 60.0)
    ln_b_bounds: tuple[float, float] = (0.0, 60.0)
    alpha_bounds: tuple[float, float] = (1e-4, 5.0)
    max_iter: int = 300
    study_grid: StudyGrid = field(default_factory=StudyGrid)

    def __post_init__(self) -> None:
        if self.space not in ("linear", "log"):
            raise ValueError(f"space must be 'linear' or 'log', not {self.space!r}")
        if self.start_grid not in START_GRIDS:
            raise ValueError(f"start_grid must be one of {', '.join(START_GRIDS)}, not {self.start_grid!r}")


@dataclass(frozen=True)
class BootstrapConfig:
    """Nonparametric bootstrap over frontier points: `resamples` refits, seeded, percentile intervals."""

    resamples: int = 200
    seed: int = 0
    level: float = 0.95


@dataclass(frozen=True)
class CompareConfig:
    """Everything `compare` needs besides the table. `filters` defaults to keeping every run; the
    study's settings for its own tables are `PRESETS[name].config()`. `preset` only names, in reports,
    the preset the columns and filters came from."""

    columns: RunColumns = field(default_factory=RunColumns)
    filters: RunFilter = field(default_factory=RunFilter)
    preset: str | None = None
    frontier: FrontierConfig = field(default_factory=FrontierConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    holdout_compute: float | None = None  # fit below this compute, test above; None: top `holdout_decades`
    holdout_decades: float = 1.0
    predict_at: tuple[float, ...] = ()  # compute values (GFLOPs) to predict the metric at
    budgets: tuple[float, ...] = ()  # compute budgets to predict compute-optimal samples seen for
    crossover_span: tuple[float, float] = (0.1, 1e4)  # search from min/10 to max*1e4 of the data
