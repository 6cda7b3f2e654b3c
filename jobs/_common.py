"""What every job entry point shares: find the package, parse `--config` YAML into frozen stage configs.

Operators ship curate as a wheel (`spark-submit --py-files dist/curate-0.1.0-py3-none-any.whl`), install it
in the image, or hand it to Ray in a `runtime_env` (`--working-dir jobs` plus `py_modules` naming the `curate`
package folder). Only when none of that happened (running from a checkout) is the repository root put on
sys.path. The job logs which copy of curate it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SECTIONS = ("run", "download", "dedup", "score", "select", "shard", "spark", "ray")


def bootstrap() -> None:
    try:
        import curate  # noqa: F401
    except ImportError:  # a checkout without the package installed: fall back to the repo root
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for key, value in (("SPARK_LOCAL_IP", "127.0.0.1"), ("RAY_USAGE_STATS_ENABLED", "0"),
                       ("NO_ALBUMENTATIONS_UPDATE", "1")):
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "pyspark", "ray", "urllib3", "PIL", "fsspec", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import curate

    # which copy runs: the wheel from --py-files, a Ray runtime_env's py_modules, or the image's install
    logging.getLogger("curate.jobs").info("curate package: %s", os.path.dirname(curate.__file__))


def parser(stage: str) -> argparse.ArgumentParser:
    from curate.cliutil import add_redo_options

    p = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"curate {stage} as a cluster job")
    p.add_argument("--config", required=True, help="pipeline YAML (local path or fsspec URL)")
    p.add_argument("--run", default=None, help="run directory (fsspec URL); overrides the YAML's `run`")
    add_redo_options(p, stage)  # as `curate STAGE`: same flags, same code
    return p


def parse(stage: str, argv: list[str] | None = None) -> tuple[str, dict]:
    """(run directory, the whole YAML mapping) from `--config FILE [--run URL] [--redo] [--force-unlock]`;
    --force-unlock and --redo are applied here, and another live run's lock fails here, as the CLI does."""
    from curate.cliutil import prepare_stage
    from curate.config import load_yaml
    from curate.engines import scratch
    from curate.errors import CurateError

    args = parser(stage).parse_args(argv)
    data = load_yaml(args.config)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise CurateError(f"{args.config}: unknown section {unknown[0]!r}; valid sections: {', '.join(SECTIONS)}")
    run = args.run or data.get("run")
    if not run:
        raise CurateError(f"{args.config}: no run directory: set `run:` or pass --run")
    prepare_stage(stage, str(run), redo=args.redo, force_unlock=args.force_unlock)
    scratch.configure(str(run), stage)
    return str(run), data


def stage_config(cls: type, data: dict, section: str):
    from curate.config import from_mapping

    return from_mapping(cls, data.get(section) or {}, where=section)


def run(job) -> None:
    """Run `job()` and leave as the `curate` command does (curate.cli.leave): status 0, or one line and status
    2 for a CurateError or a Spark or Ray failure in the workers."""
    from curate.cli import leave

    leave(main(job))


def main(job) -> int:
    """Run `job()` and turn a CurateError, or a Spark or Ray failure in the workers, into one line and exit
    status 2, like the CLI."""
    from curate.cli import engine_error
    from curate.errors import CurateError

    try:
        job()
    except CurateError as exc:
        print(f"curate: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = engine_error(exc)
        if line is None:
            raise
        logging.getLogger("curate.jobs").debug("engine error", exc_info=True)
        print(f"curate: error: {line}", file=sys.stderr)
        return 2
    return 0


@contextmanager
def spark_engine(data: dict, app_name: str) -> Iterator:
    """The session spark-submit configured (master, resources) with curate's SQL settings added; stopped
    on exit."""
    from pyspark.sql import SparkSession

    from curate.engines.spark import SparkEngine, with_scratch

    conf = {k: v for k, v in SparkEngine().conf.items() if not k.startswith("spark.driver.")}
    conf.update({str(k): str(v) for k, v in (data.get("spark") or {}).items()})
    scratch = None
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):  # no spark-submit: a session of ours, temp files in scratch
        conf, scratch = with_scratch(conf)
    builder = SparkSession.builder.appName(app_name)
    for k, v in conf.items():
        builder = builder.config(k, v)
    try:
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("WARN")
        try:
            with SparkEngine() as engine:  # reuses the active session
                yield engine
        finally:
            session.stop()
    finally:
        if scratch is not None:
            scratch.remove()


def report(stats: dict) -> None:
    """The stage's stats as one JSON line on stdout (what the CLI prints)."""
    print(json.dumps(stats, sort_keys=True), flush=True)


def table_engine(data: dict, app_name: str):
    """The engine a table stage's job runs on: the session spark-submit started (its master, never ours),
    the Ray cluster a `ray job submit` joined (the work in Ray tasks, not in this driver), or else a local
    Spark (a run on one machine)."""
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # spark-submit launched this driver
        return spark_engine(data, app_name)
    if os.environ.get("RAY_ADDRESS") or (data.get("ray") or {}).get("address"):
        return ray_engine(data)
    return spark_engine(data, app_name)


def ray_engine(data: dict):
    """Join the cluster the job was submitted to (`ray job submit` sets RAY_ADDRESS) or `ray.address` from
    the YAML; with neither, start a local Ray (a run on one machine)."""
    import ray

    from curate.engines.ray import RayEngine
    from curate.errors import CurateError

    opts = dict(data.get("ray") or {})
    address = os.environ.get("RAY_ADDRESS") or opts.pop("address", None)
    opts.pop("address", None)
    runtime_env = opts.pop("runtime_env", None)
    if opts:
        raise CurateError(f"ray: unknown key {sorted(opts)[0]!r}; valid keys: address, runtime_env")
    if address is None:
        return RayEngine(address="local")  # a new local Ray (never a cluster found on this host), shut down on exit
    if not ray.is_initialized():
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, configure_logging=False)
    logging.getLogger(__name__).info("Ray cluster: %s", ray.cluster_resources())
    return RayEngine()
