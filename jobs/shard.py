"""Ray job entry point for the shard stage (the reshard runs in the job's driver on the cluster).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/shard.py --config jobs/configs/pipeline.yaml
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
