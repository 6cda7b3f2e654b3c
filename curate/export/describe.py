"""What a finished shard run says about itself, gathered once on the driver from small files (each stage's
`_stats.json`, select's `selection.json`, score's `models.json`, shard's `plan.json` and `sizes.json`), and
the descriptions written from it beside the shards: `README.md` (dataset card), `croissant.json` and
`shardindex.json`. Everything written is a function of those files only: no time, host, engine or
absolute path, so the same run writes the same bytes wherever and however it ran."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from curate.io import fs

log = logging.getLogger(__name__)

UPSTREAM = ("extract", "download", "dedup", "score", "select")  # in pipeline order; shard comes last


@dataclass(frozen=True)
class StageCount:
    stage: str
    rows_in: int | None
    kept: int | None
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFacts:
    funnel: tuple[StageCount, ...]
    plan: dict
    sizes: dict[str, int]
    manifest_columns: tuple[tuple[str, str], ...]  # (name, arrow type) of the manifest parts
    selection: dict | None = None
    models: dict | None = None
    tars_written: bool = True

    @property
    def samples(self) -> int:
        """Samples stored in the tars (each once in a streamed folder)."""
        return int(sum(self.sizes.values()))


def _json_or_none(path: str) -> dict | None:
    try:
        return fs.read_json(path)
    except FileNotFoundError:
        return None


def _count(stats: dict, stage: str) -> StageCount:
    rejected = stats.get("rejected") if isinstance(stats.get("rejected"), dict) else {}
    return StageCount(stage, stats.get("rows_in"), stats.get("kept"),
                      {str(k): int(v) for k, v in sorted(rejected.items())})


def gather(run_dir: str, shard_dir: str, shard_stats: dict, tars_written: bool = True) -> RunFacts:
    """The facts of `run_dir`'s finished stages and of the shard stage finishing with `shard_stats`."""
    funnel = []
    for stage in UPSTREAM:
        stats = _json_or_none(fs.join(run_dir, stage, "_stats.json"))
        if stats is not None:
            funnel.append(_count(stats, stage))
    funnel.append(_count(shard_stats, "shard"))
    models = _json_or_none(fs.join(run_dir, "score", "models.json"))
    if models is None:
        models = _json_or_none(fs.join(run_dir, "score", "_config.json"))
    columns: tuple[tuple[str, str], ...] = ()
    manifest = fs.join(shard_dir, "manifest")
    if fs.exists(manifest):
        columns = tuple((f.name, str(f.type)) for f in fs.read_schema(manifest))
    return RunFacts(funnel=tuple(funnel), plan=fs.read_json(fs.join(shard_dir, "plan.json")),
                    sizes=fs.read_json(fs.join(shard_dir, "sizes.json")), manifest_columns=columns,
                    selection=_json_or_none(fs.join(run_dir, "select", "selection.json")), models=models,
                    tars_written=tars_written)


def describe(run_dir: str, shard_dir: str, shard_stats: dict, tars_written: bool = True) -> RunFacts:
    """Write the shard folder's descriptions (before its `_stats.json` and `_SUCCESS`): `README.md`,
    `croissant.json`, and `shardindex.json` where tars were written."""
    from curate.export.card import write_card
    from curate.export.croissant import write_croissant
    from curate.export.shardindex import write_shard_index

    facts = gather(run_dir, shard_dir, shard_stats, tars_written)
    if tars_written:
        write_shard_index(shard_dir, facts.sizes)
    else:  # no tars to index (an earlier run of another configuration may have left one)
        fs.remove_tree(fs.join(shard_dir, "shardindex.json"))
    write_card(shard_dir, facts)
    write_croissant(shard_dir, facts)
    log.info("shard: dataset card, croissant.json%s written", " and shardindex.json" if tars_written else "")
    return facts
