"""`shard/croissant.json`: MLCommons Croissant 1.0 metadata (JSON-LD) for the shard folder. The tars and
the manifest parts are FileSets (globs relative to the folder, so the file holds no absolute path and
`mlcroissant` reads them from beside it); the `samples` RecordSet reads uid, key, shard and caption from
the manifest. Deterministic: built from `RunFacts` only."""

from __future__ import annotations

import json

from curate.export.describe import RunFacts
from curate.io import fs

NAME = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# the context every Croissant 1.0 file carries (the spec's, section "JSON-LD context")
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "samplingRate": "cr:samplingRate", "sc": "https://schema.org/",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
FIELDS = (("uid", "sample id (DataComp-style, 128-bit hex)"), ("key", "the sample's key inside its tar"),
          ("shard", "the tar that holds the sample"), ("caption", "the caption (alt-text)"))


def _field(name: str, description: str) -> dict:
    return {"@type": "cr:Field", "@id": f"samples/{name}", "name": name, "description": description,
            "dataType": "sc:Text", "source": {"fileSet": {"@id": "manifest-parts"}, "extract": {"column": name}}}


def croissant(facts: RunFacts) -> dict:
    """The Croissant document of a shard folder."""
    distribution = [{"@type": "cr:FileSet", "@id": "manifest-parts", "name": "manifest-parts",
                     "description": "manifest.v2 parquet parts: one row per written sample, in stream order",
                     "encodingFormat": "application/x-parquet", "includes": "manifest/*.parquet"}]
    if facts.tars_written:
        distribution.insert(0, {"@type": "cr:FileSet", "@id": "tars", "name": "tars",
                                "description": f"{len(facts.sizes)} webdataset tars of {facts.samples} samples: "
                                               "KEY.jpg, KEY.txt, KEY.json per sample",
                                "encodingFormat": "application/x-tar", "includes": "*.tar"})
    columns = {n for n, _ in facts.manifest_columns}
    fields = [_field(n, d) for n, d in FIELDS if not columns or n in columns]
    return {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": CONFORMS_TO,
        "name": "curated-image-text-shards",
        "description": f"Curated image-text pairs in webdataset shards ({facts.samples} samples), written by curate's "
                       "shard stage; README.md beside this file gives the funnel, policy, models and plan.",
        "url": "README.md",
        "citeAs": "TODO: how to cite this dataset (and the sources it was curated from)",
        "license": "other",  # left for the user to set, as in README.md
        "version": "1.0.0",
        "distribution": distribution,
        "recordSet": [{"@type": "cr:RecordSet", "@id": "samples", "name": "samples",
                       "description": "one record per row of the manifest", "key": {"@id": "samples/key"},
                       "field": fields}],
    }


def write_croissant(shard_dir: str, facts: RunFacts) -> str:
    path = fs.join(shard_dir, NAME)
    fs.write_bytes(path, (json.dumps(croissant(facts), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
    return path
