"""The demo run (`run_demo`, the path `curate demo` takes: the bundled 2,000-row pool on a loopback server,
every stage on local Spark and Ray, then the report), made once per session and shared, read-only, by the
pipeline and report tests: tests that change it work on a copy."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    from curate.demo.run import run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    result = run_demo(str(out))
    assert result.ok, result.problems
    assert (out / "report" / "index.html").is_file()
    return out
