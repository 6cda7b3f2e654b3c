"""Imports every module that registers policy steps, so `make_step` and `load_policy` know them all."""

from curate.select import datacomp, image, laion, metaclip, rebalance  # noqa: F401
