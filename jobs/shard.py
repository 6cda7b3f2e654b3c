"""Ray job entry point for the shard stage (the reshard runs in the job's driver on the cluster).

    pip install --no-deps --target ship dist/curate-0.1.0-py3-none-any.whl   # the wheel, unpacked
    ray job submit --address http://HEAD:8265 --working-dir jobs \
        --runtime-env-json '{"py_modules": ["ship/curate"]}' -- python shard.py --config configs/pipeline.yaml

(or with curate installed in the nodes' image: no `py_modules`).
"""

from __future__ import annotations

import sys

import _common


def job() -> None:
    from curate.shard.run import ShardConfig, run_shard

    run, data = _common.parse("shard")
    _common.report(run_shard(run, _common.stage_config(ShardConfig, data, "shard")))


if __name__ == "__main__":
    _common.bootstrap()
    sys.exit(_common.main(job))
