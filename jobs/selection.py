"""Entry point for the select stage: the pool is read, decided and written by the cluster's workers (Spark's
executors under spark-submit, Ray tasks under `ray job submit`); the driver holds one descriptor per download
shard. Named selection.py, not select.py: a job's folder is first on sys.path, and a select.py there would
shadow the standard library's `select` module (Spark's Python workers import it).

    spark-submit --master spark://HOST:7077 --py-files dist/curate-0.1.0-py3-none-any.whl \
        jobs/selection.py --config jobs/configs/pipeline.yaml [--run s3://bucket/run-001]
    ray job submit --address http://HEAD:8265 --working-dir jobs \
        --runtime-env-json '{"py_modules": ["ship/curate"]}' -- python selection.py --config configs/pipeline.yaml
"""

from __future__ import annotations

import _common


def job() -> None:
    from curate.select.run import SelectConfig, run_select

    run, data = _common.parse("select")
    config = _common.stage_config(SelectConfig, data, "select")
    with _common.table_engine(data, "curate-select") as engine:
        _common.report(run_select(run, config, engine))


if __name__ == "__main__":
    _common.bootstrap()
    _common.run(job)
