"""Ray job entry point for the score stage (fasttext language ID and open_clip in actor pools).

    pip install --no-deps --target ship dist/curate-0.1.0-py3-none-any.whl   # the wheel, unpacked
    ray job submit --address http://HEAD:8265 --working-dir jobs \
        --runtime-env-json '{"py_modules": ["ship/curate"]}' -- python score.py --config configs/pipeline.yaml

(or with curate installed in the nodes' image: no `py_modules`).
"""

from __future__ import annotations

import _common


def job() -> None:
    from curate.score.run import ScoreConfig, run_score

    run, data = _common.parse("score")
    config = _common.stage_config(ScoreConfig, data, "score")
    with _common.ray_engine(data) as engine:
        _common.report(run_score(engine, run, config))


if __name__ == "__main__":
    _common.bootstrap()
    _common.run(job)
