"""spark-submit entry point for the dedup stage (image hashes, safety lists, eval set, placeholders, exact and
near-duplicates, on Spark).

    spark-submit --master spark://HOST:7077 --py-files dist/curate-0.1.0-py3-none-any.whl \
        jobs/dedup.py --config jobs/configs/pipeline.yaml [--run s3://bucket/run-001]
"""

from __future__ import annotations

import _common


def job() -> None:
    from curate.dedup.run import DedupConfig, run_dedup

    run, data = _common.parse("dedup")
    config = _common.stage_config(DedupConfig, data, "dedup")
    with _common.spark_engine(data, "curate-dedup") as engine:
        _common.report(run_dedup(engine, run, config))


if __name__ == "__main__":
    _common.bootstrap()
    _common.run(job)
