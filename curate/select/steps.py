"""Imports every module that registers policy steps, so `make_step` and `load_policy` know them all."""

from curate.select import datacomp, datacomp_text, image, laion, metaclip, rebalance, semdedup  # noqa: F401
