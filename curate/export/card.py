"""`shard/README.md`: a Hugging Face dataset card for the shard folder. The YAML header is what the Hub
reads (license left for the user to fill, size category, task, the tars as the default config's data
files); the body gives the funnel of every stage, the selection policy with its thresholds, the models
with their revisions, the repetition plan and the known limits. Deterministic: built from `RunFacts` only
(no dates, hosts, engines or absolute paths), every mapping in sorted order."""

from __future__ import annotations

import json

from curate.export.describe import RunFacts
from curate.io import fs

NAME = "README.md"
TASKS = ("zero-shot-image-classification", "image-to-text", "text-to-image")
# the Hub's size_categories bins: (upper bound exclusive, label)
SIZE_BINS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
             (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
             (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (10 ** 12, "100B<n<1T"))


def size_category(n: int) -> str:
    for bound, label in SIZE_BINS:
        if n < bound:
            return label
    return "n>1T"


def _header(facts: RunFacts, data_files: str) -> str:
    lines = ["---",
             "# TODO: the license of the curated data depends on its sources; set it before you publish",
             "# (for example cc-by-4.0), with license_name and license_link when it stays `other`.",
             "license: other",
             "size_categories:", f"- {size_category(facts.samples)}",
             "task_categories:", *[f"- {t}" for t in TASKS],
             "tags:", "- webdataset", "- image-text", "- clip", "- curate"]
    if facts.tars_written:
        lines += ["configs:", "- config_name: default", "  data_files:", "  - split: train",
                  f'    path: "{data_files}"']
    return "\n".join([*lines, "---", ""])


def _num(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"`{json.dumps(v, sort_keys=True)}`" if not isinstance(v, str) else f"`{v}`"
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def _funnel(facts: RunFacts) -> list[str]:
    out = ["## Funnel", "",
           "Rows each stage read and kept, and why it dropped the others (each stage's `_stats.json`).", "",
           "| stage | rows in | kept | dropped, by reason |", "|---|---:|---:|---|"]
    for c in facts.funnel:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(c.rejected.items(), key=lambda kv: (-kv[1], kv[0])))
        out.append(f"| {c.stage} | {_num(c.rows_in)} | {_num(c.kept)} | {reasons or '–'} |")
    return [*out, ""]


def _policy(facts: RunFacts) -> list[str]:
    out = ["## Selection policy", ""]
    sel = facts.selection
    if not sel:
        return [*out, "No `select/selection.json` in this run: the selection came from elsewhere (for example a "
                      "DataComp `--uids` file); its policy is not recorded here.", ""]
    policy = sel.get("policy") or {}
    out.append(f"Policy `{policy.get('name', '?')}` (seed {policy.get('seed', 0)}; target size "
               f"{_num(policy.get('target_size'))}): {_num(sel.get('kept'))} of {_num(sel.get('pool'))} kept.")
    out += ["", "| step | threshold / parameter | value | rejected |", "|---|---|---|---:|"]
    for step in sel.get("steps") or []:
        params = step.get("resolved") or step.get("params") or {}
        first = True
        for key in sorted(params) or [""]:
            out.append(f"| {step.get('name', '?') if first else ''} | {key} | "
                       f"{_num(params.get(key)) if key else '–'} | {_num(step.get('rejected')) if first else ''} |")
            first = False
    return [*out, ""]


def _models(facts: RunFacts) -> list[str]:
    out = ["## Models", ""]
    m = facts.models
    if not m:
        return [*out, "No `score/models.json` in this run: the scores came from elsewhere.", ""]
    out += ["| role | model | pretrained | revision |", "|---|---|---|---|"]
    for model in m.get("models") or []:
        out.append(f"| CLIP `{model.get('alias', '')}` (columns {', '.join(model.get('columns') or [])}) | "
                   f"{model.get('name', '')} | {model.get('pretrained') or '–'} | `{model.get('revision', '')}` |")
    if m.get("langid_model"):
        out.append(f"| language ID | {m['langid_model']} | – | `{m.get('langid_revision', '')}` |")
    for probe in m.get("probes") or []:
        name = probe.get("name", probe) if isinstance(probe, dict) else probe
        out.append(f"| probe | {name} | – | `{probe.get('revision', '') if isinstance(probe, dict) else ''}` |")
    return [*out, ""]


PLAN_KEYS = ("unique_samples", "samples_seen", "passes", "weighted", "max_count", "repetition",
             "repetition_requested", "samples_written", "bytes_if_materialised", "bytes_if_streamed", "seed",
             "block_samples", "tars", "max_shard_bytes")


def _plan(facts: RunFacts) -> list[str]:
    p = facts.plan
    out = ["## Repetition plan", "",
           "How often the training stream shows each sample (`plan.json`); the histogram maps a count to the "
           "number of samples shown that often.", "", "| | |", "|---|---|"]
    out += [f"| {k} | {_num(p[k])} |" for k in PLAN_KEYS if k in p]
    hist = p.get("histogram") or {}
    out.append(f"| histogram | {', '.join(f'{k}×: {v:,}' for k, v in sorted(hist.items(), key=lambda kv: int(kv[0])))}"
               f" |")
    return [*out, ""]


def _files(facts: RunFacts) -> list[str]:
    out = ["## Files and how to load them", "",
           f"- `NNNNN.tar`: {len(facts.sizes):,} webdataset shards, {facts.samples:,} samples; each sample's original"
           " `jpg` (image), `txt` (caption) and `json` (uid, url, sizes) under a globally unique key. "
           "`sizes.json` lists the samples per tar (open_clip's trainer reads it).",
           "- `manifest/part-KKKKK.parquet` (manifest.v2): one row per written sample in stream order, columns "
           + ", ".join(f"`{n}`" for n, _ in facts.manifest_columns) + ".",
           "- `shardindex.json`: webdataset's wids index, for random access by sample index "
           "(`wids.ShardListDataset(\"shardindex.json\")`).",
           "- `croissant.json`: MLCommons Croissant 1.0 metadata (`mlcroissant.Dataset(\"croissant.json\")`).",
           "- `plan.json`, `_stats.json`, `NNNNN_stats.json`: the plan and the counts of this stage.",
           "",
           "Hugging Face `datasets`: `load_dataset(\"webdataset\", data_files={\"train\": \"*.tar\"})`. "
           "`curate export RUN --format hf-parquet` writes parquet shards in the `datasets` Image layout "
           "(ready for a Hub upload), `--format mds` writes MDS for `streaming.StreamingDataset`.", ""]
    if not facts.tars_written:
        out.insert(2, "This folder holds the plan and manifest only (no tars were written).")
    return out


def _limits(facts: RunFacts) -> list[str]:
    out = ["## Known limits", "",
           "- Licensing and consent: the images and captions keep the rights of their sources. The download "
           "honoured the opt-out signals it was configured with (see its `_stats.json`), which does not make the "
           "data licensed for every use: check before publishing or training.",
           "- Scores come from the models above, with their biases; the policy's thresholds were chosen for CLIP "
           "pre-training (DataComp-style), not for other uses.",
           "- Deduplication and safety filtering are only as good as their hash lists and thresholds: near "
           "duplicates beyond the configured distance and unsafe images outside the lists may remain.",
           "- Captions are web alt-texts: noisy, sometimes wrong, mostly English where a language filter ran."]
    if facts.plan.get("stream") == "stream":
        out.append("- Streamed repetition plan: each sample is stored once; the planned repeats come from "
                   "`stream/` through `curate.shard.loader`. A reader of the tars alone (datasets, wids, MDS "
                   "exports) sees every sample once.")
    return [*out, ""]


def render_card(facts: RunFacts, data_files: str = "*.tar") -> str:
    """The card of the shard folder, or (`data_files` "*.parquet") of its hf-parquet export."""
    body = [f"# Curated image-text shards ({facts.samples:,} samples)", "",
            "Written by the `curate` shard stage from the stages of this run; every number below is read from "
            "the run's own records.", ""]
    if data_files != "*.tar":
        body += [f"This folder is `curate export --format hf-parquet` of the shards described below: one `{data_files}`"
                 " file per tar with the columns `image` (the `datasets` Image layout: the stored bytes and their "
                 "file name), `uid`, `caption` and `key`; `load_dataset(\"parquet\", data_files=...)` or "
                 "`load_dataset(FOLDER)` reads it.", ""]
    body += [*_funnel(facts), *_policy(facts), *_models(facts), *_plan(facts), *_files(facts), *_limits(facts)]
    return _header(facts, data_files) + "\n" + "\n".join(body)


def write_card(folder: str, facts: RunFacts, data_files: str = "*.tar") -> str:
    path = fs.join(folder, NAME)
    fs.write_bytes(path, render_card(facts, data_files).encode())
    return path
