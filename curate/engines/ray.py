"""The Ray engine: Ray Data pipelines with actor pools, on a local Ray or the cluster we are submitted to."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import ray
import ray.data

from curate.engines.base import StageSpec
from curate.errors import CurateError
from curate.stage import build

log = logging.getLogger(__name__)


class _Read:
    def __init__(self, read: Callable[[dict], pa.Table]) -> None:
        self.read = read

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = [self.read(item) for item in batch.to_pylist()]
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


class _StageActor:
    """One stage instance per actor: the model is loaded once, then batches stream through."""

    def __init__(self, spec: StageSpec) -> None:
        os.environ.update(spec.env)
        self.stage = build(spec.stage_cls, spec.config)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.stage(batch)


class RayEngine:
    """Starts a local Ray (and shuts it down on exit) unless Ray is already initialised or an address is given."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 progress: bool = False) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.progress = progress
        self._owned = False

    def __enter__(self) -> RayEngine:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count()
            ray.init(**kwargs)
            self._owned = True
            log.info("started Ray %s with %s", ray.__version__, ray.cluster_resources())
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ctx.print_on_execution_start = self.progress
        if not self.progress:  # Ray Data warns that progress bars are off: we turned them off
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            ray.shutdown()

    def map_stages(self, items: Sequence[dict], read: Callable[[dict], pa.Table],
                   specs: Sequence[StageSpec]) -> Iterator[pa.Table]:
        """Read each item into a table in Ray tasks, stream it through each stage's actor pool."""
        if not items:
            return iter(())
        ds = ray.data.from_items(list(items), override_num_blocks=len(items))
        ds = ds.map_batches(_Read(read), batch_size=1, batch_format="pyarrow", num_cpus=0.5)
        for spec in specs:
            ds = ds.map_batches(_StageActor, fn_constructor_kwargs={"spec": spec}, batch_size=spec.batch_size,
                                batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=spec.concurrency),
                                num_cpus=spec.num_cpus, num_gpus=spec.num_gpus or None)
        return _user_errors(ds.iter_batches(batch_format="pyarrow", batch_size=None))


def _root_cause(exc: BaseException) -> BaseException:
    """The exception a stage raised, under Ray's wrappers (RayTaskError, UserCodeException, ...)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, CurateError):
            return exc
        nxt = getattr(exc, "cause", None) or exc.__cause__
        if nxt is None:
            break
        exc = nxt
    return exc


def _user_errors(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    try:
        yield from batches
    except Exception as exc:  # re-raise what the stage raised, not Ray's multi-page wrapper
        root = _root_cause(exc)
        if isinstance(root, CurateError):
            raise CurateError(str(root).splitlines()[0]) from exc
        text = str(root).strip().splitlines()
        raise CurateError(f"a Ray stage failed: {type(root).__name__}: {text[-1] if text else ''}") from exc
