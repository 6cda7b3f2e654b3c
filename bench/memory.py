"""Peak resident memory while a benchmark runs: of this process (the driver) and of its whole process tree
(the driver, Spark's JVM and Python workers, Ray's processes), sampled from /proc."""

from __future__ import annotations

import os
import resource
import threading


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                continue
    return children


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def tree_rss(root: int | None = None) -> int:
    children = _children()
    todo, total = [root or os.getpid()], 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += rss(pid)
    return total


def self_peak_rss() -> int:
    """This process's peak RSS since it started (the kernel's high-water mark), in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRss:
    """Peak RSS of this process's tree, sampled every `every` seconds while the block runs."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = tree_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
