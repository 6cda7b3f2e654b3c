import pytest

from curate.shard.synthetic import SyntheticRun, make_run


@pytest.fixture
def run_dir(tmp_path):
    """A synthetic finished run (60 samples in 3 download shards), every sample selected."""
    make_run(str(tmp_path / "run"), SyntheticRun())
    return str(tmp_path / "run")
