"""spark-submit entry point for the download stage (img2dataset's Downloader on the executors).

    spark-submit --master spark://HOST:7077 --py-files dist/curate-0.1.0-py3-none-any.whl \
        jobs/download.py --config jobs/configs/pipeline.yaml [--run s3://bucket/run-001]
"""

from __future__ import annotations

import _common


def job() -> None:
    from curate.download.config import DownloadConfig
    from curate.download.run import run_download

    run, data = _common.parse("download")
    config = _common.stage_config(DownloadConfig, data, "download")
    with _common.spark_engine(data, "curate-download") as engine:
        _common.report(run_download(engine, run, config))


if __name__ == "__main__":  # img2dataset spawns processes: the guard keeps them from re-running the job
    _common.bootstrap()
    _common.run(job)
