"""The Ray engine: Ray Data pipelines with actor pools, on a local Ray or the cluster we are submitted to."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import ray
import ray.data
import ray.exceptions

from curate.engines.base import StageSpec
from curate.errors import CurateError, named
from curate.stage import build

log = logging.getLogger(__name__)

_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): (.+)$", re.MULTILINE)


class _Read:
    def __init__(self, read: Callable[[dict], pa.Table]) -> None:
        self.read = named(read)  # a failed read names its item (a shard's tar, a part)

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


class _TaskStage:
    """A stateless stage (class attribute `stateless = True`, e.g. image decoding) run in plain Ray tasks,
    so it scales with free CPUs beside the actor pools instead of holding an actor."""

    def __init__(self, spec: StageSpec) -> None:
        self.spec = spec
        self.stage = None

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.stage is None:
            os.environ.update(self.spec.env)
            self.stage = build(self.spec.stage_cls, self.spec.config)
        return self.stage(batch)


# Ray Data's own account of a failed task ("An exception was raised from a task of operator ...", "Exception
# occurred in user code ..."): curate reports the failure once, as its input and cause (user_error); -v keeps it.
_FAILURE_LOGGERS = ("ray.data.exceptions", "ray.data._internal.execution.streaming_executor_state")


class _NoFailureLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


class RayEngine:
    """Starts a local Ray (and shuts it down on exit) unless Ray is already initialised or an address is given."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 progress: bool = False) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.progress = progress
        self._owned = False
        self._scratch = None

    def __enter__(self) -> RayEngine:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count()
            if self.address in (None, "local") and not os.environ.get("RAY_ADDRESS"):  # a Ray of our own
                self._scratch = ray_scratch()
                if self._scratch is not None:
                    kwargs["_temp_dir"] = self._scratch.create()
            try:
                ray.init(**kwargs)
            except BaseException:
                self._drop_scratch()
                raise
            self._owned = True
            log.info("started Ray %s with %s", ray.__version__, ray.cluster_resources())
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ctx.print_on_execution_start = self.progress
        if not self.progress:  # Ray Data warns that progress bars are off: we turned them off
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        if not logging.getLogger("curate").isEnabledFor(logging.DEBUG):  # without -v
            for name in _FAILURE_LOGGERS:
                logger = logging.getLogger(name)
                if not any(isinstance(f, _NoFailureLog) for f in logger.filters):
                    logger.addFilter(_NoFailureLog())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._owned:
                ray.shutdown()
        finally:
            self._drop_scratch()

    def _drop_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.remove()
            self._scratch = None

    def run_tasks(self, fn: Callable[[Any], Any], items: Any, max_retries: int = 2) -> list[Any]:
        """`fn(item)` for every item, each in a Ray task of one CPU, results in order. A task whose worker
        dies or that raises runs again, up to `max_retries` times (img2dataset's Ray distributor drops
        failed shards silently); one that still fails is a CurateError."""
        items = list(items)
        if not items:
            return []
        fn_ref = ray.put(named(fn))  # a failure names its item
        task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=True)(_run_task)
        refs = [task.remote(fn_ref, item) for item in items]
        try:
            return ray.get(refs)
        except Exception as exc:  # the cause, in one line, not Ray's multi-page wrapper
            raise _one_line(exc, max_retries) from exc

    def for_each(self, fn: Callable[[Any], dict], items: Any, per_task: int = 1, max_retries: int = 2) -> dict:
        """`fn(item)` for every item in Ray tasks, `per_task` items to a task; the stats dicts they return
        are merged in the tasks, then here. Retries and errors as `run_tasks`."""
        from curate.io.dataset import merge_stats

        items = list(items)
        groups = [items[i:i + max(1, per_task)] for i in range(0, len(items), max(1, per_task))]
        return merge_stats(self.run_tasks(_Merged(named(fn)), groups, max_retries=max_retries))

    def map_stages(self, items: Sequence[dict], read: Callable[[dict], pa.Table],
                   specs: Sequence[StageSpec]) -> Iterator[pa.Table]:
        """Read each item into a table in Ray tasks, stream it through each stage's actor pool."""
        if not items:
            return iter(())
        ds = ray.data.from_items(list(items), override_num_blocks=len(items))
        ds = with_stages(ds.map_batches(_Read(read), batch_size=1, batch_format="pyarrow", num_cpus=0.5), specs)
        from curate.progress import track

        total = sum(len(it.get("keys", ())) for it in items) or None
        return track(_user_errors(ds.iter_batches(batch_format="pyarrow", batch_size=None)), "ray stages",
                     total, "rows", size=lambda batch: batch.num_rows)

    def map_shards(self, items: Sequence[dict], read: Callable[[dict], pa.Table], specs: Sequence[StageSpec],
                   write: Callable[[pa.Table], pa.Table], commit: Callable[[dict], dict]) -> dict:
        """Storage to storage, one descriptor per shard: Ray tasks `read` each item, the rows stream through
        the stages, `write` stores each batch's rows of each shard as pieces, and `commit` writes a shard's
        outputs once all its rows are through; returns the commits' stats, merged (see `ray_shards`)."""
        from curate.engines.ray_shards import map_shards

        return map_shards(items, read, specs, write, commit)

    # -- the table surface select and audit use (curate.engines.base.Engine), on Ray Data (ray_frames) --
    def read_items(self, items: Sequence[dict], read: Callable[[dict], pa.Table], schema: pa.Schema) -> Any:
        from curate.engines import ray_frames

        return ray_frames.read_items(items, read, schema)

    def read_dataset(self, folder: str | Sequence[str], schema: pa.Schema, tasks: int | None = None) -> Any:
        from curate.engines.local import _PartReader
        from curate.io import dataset

        paths = dataset.part_paths(folder) if isinstance(folder, str) else list(folder)
        return self.read_items([{"path": p} for p in paths], _PartReader(schema), schema)

    def map_batches(self, frame: Any, spec: StageSpec, output_schema: pa.Schema) -> Any:
        from curate.engines import ray_frames

        return ray_frames.map_batches(frame, spec, output_schema)

    def write_dataset(self, frame: Any, folder: str, **kwargs: Any) -> dict:
        from curate.engines import ray_frames

        return ray_frames.write_dataset(frame, folder, **kwargs)

    def map_groups(self, frame: Any, key: str, fn: Callable[[pa.Table], pa.Table], schema: pa.Schema) -> Any:
        from curate.engines import ray_frames

        return ray_frames.map_groups(frame, key, fn, schema)

    def count_where(self, frame: Any, where_null: str | None = None) -> int:
        from curate.engines import ray_frames

        return ray_frames.count_where(frame, where_null)

    def kth_largest(self, frame: Any, column: str, k: int, where_null: str | None = None) -> tuple[float, str]:
        from curate.engines import ray_frames

        return ray_frames.kth_largest(frame, column, k, where_null)

    def value_counts(self, frame: Any, column: str, where_null: str | None = None) -> dict:
        from curate.engines import ray_frames

        return ray_frames.value_counts(frame, column, where_null)

    def smallest_rows(self, frame: Any, key: str, n: int, columns: Sequence[str], where_null: str | None = None):
        from curate.engines import ray_frames

        return ray_frames.smallest_rows(frame, key, n, columns, where_null)

    def materialize(self, frame: Any) -> Any:
        return frame.materialize()

    def select_columns(self, frame: Any, columns: Sequence[str]) -> Any:
        return frame.select_columns(list(columns))

    def to_arrow(self, frame: Any) -> pa.Table:
        """A (small: a limit) frame's rows here."""
        return pa.concat_tables(ray.get(frame.to_arrow_refs()))

    def schema_of(self, frame: Any) -> pa.Schema:
        """The frame's Arrow schema (Ray reads it from the first block)."""
        return frame.schema().base_schema


_SOCKET = len("/session_2026-12-07_16-12-32_912853_4194304/sockets/plasma_store")
_SOCKET_MAX = 107  # bytes in an AF_UNIX path on Linux; Ray's sockets live in its temp folder


def ray_scratch():
    """The scratch folder for a local Ray's session files (curate.engines.scratch), or, where that path is
    too long for Ray's unix sockets, one under the system temp folder, or /tmp; None (Ray's default) if all are."""
    from curate.engines.scratch import Scratch, root, system_root

    for base in (root(), system_root(), "/tmp/curate-scratch"):  # the last: a long TMPDIR
        scratch = Scratch("ray", base)
        if len(scratch.path.encode()) + _SOCKET <= _SOCKET_MAX:
            return scratch
    log.debug("scratch: %s is too long for Ray's sockets; Ray keeps its default temp folder", scratch.path)
    return None


def with_stages(ds: ray.data.Dataset, specs: Sequence[StageSpec]) -> ray.data.Dataset:
    """`ds` through each stage: stateless ones in Ray tasks, the others in actor pools (one set-up each)."""
    for spec in specs:
        if getattr(spec.stage_cls, "stateless", False):
            ds = ds.map_batches(_TaskStage(spec), batch_size=spec.batch_size, batch_format="pyarrow",
                                num_cpus=spec.num_cpus, concurrency=spec.concurrency)
            continue
        ds = ds.map_batches(_StageActor, fn_constructor_kwargs={"spec": spec}, batch_size=spec.batch_size,
                            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=spec.concurrency),
                            num_cpus=spec.num_cpus, num_gpus=spec.num_gpus or None)
    return ds


class _Merged:
    def __init__(self, fn: Callable[[Any], dict]) -> None:
        self.fn = fn

    def __call__(self, group: list) -> dict:
        from curate.io.dataset import merge_stats

        return merge_stats(self.fn(item) for item in group)


def _run_task(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _one_line(exc: BaseException, max_retries: int) -> CurateError:
    """A failed Ray task as one line: the cause, not Ray's multi-page wrapper."""
    root = _root_cause(exc)
    text = str(root).strip().splitlines()
    if isinstance(root, CurateError):  # it names its input and cause (curate.errors.Named)
        return CurateError(text[0] if text else type(root).__name__)
    return CurateError(f"a Ray task failed after {max_retries + 1} attempts: {type(root).__name__}: "
                       f"{text[-1] if text else ''}")


def _root_cause(exc: BaseException) -> BaseException:
    """The exception a stage raised, under Ray's wrappers (RayTaskError, UserCodeException, ...). Ray's
    wrapper of a CurateError is itself a CurateError (a subclass it makes): its `cause` is the one raised."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, CurateError) and not isinstance(exc, ray.exceptions.RayError):
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
        raise user_error(exc) from exc


def user_error(exc: BaseException) -> CurateError:
    """A failed Ray task or Ray Data pipeline as one line: what the stage raised."""
    root = _root_cause(exc)
    if isinstance(root, CurateError):
        return CurateError(str(root).splitlines()[0])
    # Ray Data may drop the exception chain but keeps the worker's traceback text: find the stage's
    # own error line there (a CurateError's message first, else the last non-Ray exception: in a chain
    # printed as Python prints it, the one the stage raised, e.g. a storage error that names its file,
    # comes after its causes, which may not).
    lines = [m.groups() for m in _ERROR_LINE.finditer(str(exc)) if not m.group(1).startswith("ray.")]
    ours = [msg for name, msg in lines if name.startswith("curate.")]
    if ours:
        return CurateError(ours[0])
    if lines:
        return CurateError(f"a Ray stage failed: {lines[-1][0].rsplit('.', 1)[-1]}: {lines[-1][1]}")
    text = str(root).strip().splitlines()
    return CurateError(f"a Ray stage failed: {type(root).__name__}: {text[-1] if text else ''}")
