"""Run every stage in order on one machine: Spark for download, dedup, select and the audit, Ray for score,
then shard. Finished stages are skipped, so a rerun resumes where it stopped."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from curate.audit import Audit, audit
from curate.dedup.run import DedupConfig, run_dedup
from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.io.stagedir import StageDir
from curate.score.run import ScoreConfig, run_score
from curate.select.run import SelectConfig, run_select
from curate.shard.run import ShardConfig, run_shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    download: DownloadConfig
    dedup: DedupConfig = field(default_factory=DedupConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)


def run_pipeline(run_dir: str, config: PipelineConfig) -> Audit:
    """One Spark session serves the Spark stages (download, dedup, select, shard, audit); a local Ray serves
    score between them."""
    from curate.engines.ray import RayEngine
    from curate.engines.spark import SparkEngine

    with SparkEngine() as spark:
        run_download(spark, run_dir, config.download)
        run_dedup(spark, run_dir, config.dedup)
        if StageDir.finished(run_dir, "score", config.score) is None:  # Ray starts only for work to do
            with RayEngine() as ray_engine:
                run_score(ray_engine, run_dir, config.score)
        run_select(run_dir, config.select, spark)
        run_shard(run_dir, config.shard, spark)
        return audit(run_dir, spark)


def format_funnel(result: Audit) -> str:
    """The funnel as a table a person reads: per stage, rows in, kept, and rejections by reason."""
    lines = [f"{'stage':<10}{'in':>8}{'kept':>8}  rejected", "-" * 60]
    for stage, s in result.stages.items():
        rej = ", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "-"
        lines.append(f"{stage:<10}{s['rows_in']:>8}{s['kept']:>8}  {rej}")
    lines.append("-" * 60)
    lines.append(f"input rows {result.input_rows}, kept {result.kept}, rejected {sum(result.rejected.values())}"
                 f" -> accounting identity {'holds' if result.ok else 'FAILS: ' + '; '.join(result.problems)}")
    return "\n".join(lines)
