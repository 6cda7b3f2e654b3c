"""`curate report RUN`: a self-contained HTML page about a run (funnel, score histograms with the policy's
thresholds, languages, duplicate groups, repetition, image grids of kept and rejected samples)."""

from curate.report.build import write_report

__all__ = ["write_report"]
