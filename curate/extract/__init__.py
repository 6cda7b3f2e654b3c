"""`curate extract`: image URLs and their alt text from Common Crawl WAT (or WARC HTML) files, as the download
stage's input.

Output (RUN/extract/):
- `part-NNNNN.parquet`: the kept pairs of input file NNNNN (schemas/extract.v1.json): url, caption, uid and
  the download stage's other input columns, plus where each pair came from. `curate download RUN2 --input
  RUN/extract` reads the folder as it is.
- `rejects/part-NNNNN.parquet`: every image reference that was not kept, with its reason
  (schemas/extract_rejects.v1.json; reasons in schemas/reasons.v1.json under `extract`). Rejects go to a
  table of their own, not a status column, so that the pairs folder is a valid download input as it is and
  nothing is silently dropped: every image reference is in exactly one of the two tables.
- `_inputs.json` (the input files in part order, and the settings that shape the rows), `_stats.json`,
  `_SUCCESS`.

Modules: `config` (ExtractConfig), `inputs` (which files), `urls` (resolution and validity), `captions`,
`wat` and `html` (one record to a Page), `rows` (Pages of one file to the two tables), `task` (one file,
start to finish, on a worker), `run` (the stage on an engine), `synthetic` (WAT and WARC files for tests and
the benchmark). Only `run` sees the engine.
"""
