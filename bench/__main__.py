"""`python -m bench [NAME ...]`: run the benchmarks (all of them by default) and print their tables.

Each benchmark is a module `bench/bench_NAME.py` with `main(argv: list[str]) -> None`; `pipeline` times
the whole demo pipeline. `python -m bench download -- --n 5000` passes the arguments after `--` on.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from pathlib import Path

import bench

SKIP_BY_DEFAULT = {"compare", "recipes"}  # minutes each (scaling-law fits; MetaCLIP 500k + SemDeDup 1M): by name


def available() -> list[str]:
    names = [m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(Path(bench.__file__).parent)])
             if m.name.startswith("bench_")]
    return ["pipeline", *sorted(names)]


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    names = argv or [n for n in available() if n not in SKIP_BY_DEFAULT]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}; have {', '.join(available())}", file=sys.stderr)
        return 2
    for name in names:
        module = importlib.import_module("bench.pipeline" if name == "pipeline" else f"bench.bench_{name}")
        print(f"\n== bench {name}", flush=True)
        if name == "compare":  # an older script that parses sys.argv itself
            sys.argv = ["bench_compare", *extra]
            module.main()
        else:
            module.main(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
