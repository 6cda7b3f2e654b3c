"""Entry point for the shard stage: the plan's counting passes, the shuffle of rows to output shards and
the writing of tars and manifest parts run on the cluster's workers (Spark's executors under spark-submit,
Ray tasks under `ray job submit`); the driver holds one descriptor per source shard and per-task stats.

    spark-submit --master spark://HOST:7077 --py-files dist/curate-0.1.0-py3-none-any.whl \
        jobs/shard.py --config jobs/configs/pipeline.yaml [--run s3://bucket/run-001]
    pip install --no-deps --target ship dist/curate-0.1.0-py3-none-any.whl   # the wheel, unpacked
    ray job submit --address http://HEAD:8265 --working-dir jobs \
        --runtime-env-json '{"py_modules": ["ship/curate"]}' -- python shard.py --config configs/pipeline.yaml

(or with curate installed in the nodes' image: no `py_modules`).
"""

from __future__ import annotations

import _common


def job() -> None:
    from curate.shard.run import ShardConfig, run_shard

    run, data = _common.parse("shard")
    config = _common.stage_config(ShardConfig, data, "shard")
    with _common.table_engine(data, "curate-shard") as engine:
        _common.report(run_shard(run, config, engine))


if __name__ == "__main__":
    _common.bootstrap()
    _common.run(job)
