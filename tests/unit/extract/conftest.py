"""Run the extract stage in this process on files a test writes, and read what it wrote."""

from __future__ import annotations

import pytest

from curate.engines.local import LocalEngine
from curate.extract.config import ExtractConfig
from curate.extract.run import run_extract
from curate.io import dataset


def read(run: str) -> tuple[list[dict], list[dict]]:
    """(pairs, rejects) of RUN/extract as lists of rows."""
    return (dataset.read_table(f"{run}/extract").to_pylist(),
            dataset.read_table(f"{run}/extract/rejects").to_pylist())


@pytest.fixture
def extract(tmp_path):
    """extract(input, **config) -> (stats, pairs, rejects), run with the local engine into a fresh run dir."""
    counter = iter(range(1000))

    def go(input_path, run=None, **config):
        run = run or str(tmp_path / f"run{next(counter)}")
        with LocalEngine() as engine:
            stats = run_extract(engine, run, ExtractConfig(input=str(input_path), **config))
        return (stats, *read(run))

    return go
