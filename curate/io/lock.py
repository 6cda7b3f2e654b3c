"""A stage's lock file, `_LOCK` in its folder: one run at a time writes a stage.

The lock is created atomically where the store allows it: `O_CREAT|O_EXCL` on local disk, a conditional
PUT (`If-None-Match: *`) on S3, `ifGenerationMatch=0` on GCS. Any other fsspec store gets an exists-check
then a write, with a warning that two runs starting at the same moment could both pass it. The file holds
who took it (owner, host, pid, start time, UTC); a second run fails at once with a message naming them.
A lock whose process is gone (same host, pid no longer alive: a SIGKILL or a lost machine leaves it) is
taken over with a warning; a lock from another host can only be removed with `--force-unlock`.
"""

from __future__ import annotations

import errno
import getpass
import json
import logging
import os
import socket
from datetime import UTC, datetime

from curate.errors import CurateError
from curate.io import fs

log = logging.getLogger(__name__)

LOCK = "_LOCK"


def whoami() -> dict:
    """This process's lock record: owner, host, pid and start time (UTC, ISO 8601)."""
    try:
        owner = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        owner = str(os.getuid())
    return {"owner": owner, "host": socket.gethostname(), "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds")}


def describe(record: dict | None) -> str:
    if not record:
        return "an unknown run (the lock file is empty or unreadable)"
    return (f"{record.get('owner', '?')} on {record.get('host', '?')}, pid {record.get('pid', '?')}, "
            f"started {record.get('started', '?')}")


class StageLock:
    """A held lock; `release` (or leaving a `with` block) removes the file if it is still ours."""

    def __init__(self, path: str, record: dict) -> None:
        self.path, self.record, self.held = path, record, True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        now = read(self.path)
        if now != self.record:  # removed, or taken over by someone with --force-unlock: not ours to remove
            log.warning("lock %s is no longer ours (now held by %s); leaving it", self.path, describe(now))
            return
        _remove(self.path)

    def __enter__(self) -> StageLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(path: str, what: str) -> StageLock:
    """Take the lock file `path` for `what` (a stage name, for messages), or raise a one-line CurateError
    naming its holder. A stale lock (this host, dead pid) is taken over."""
    record = whoami()
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    if _create(path, data):
        return StageLock(path, record)
    holder = read(path)
    if holder is None and not fs.exists(path) and _create(path, data):  # released between our two looks
        return StageLock(path, record)
    if holder is not None and stale(holder):
        log.warning("%s: taking over the stale lock %s of %s: that process is gone", what, path, describe(holder))
        if read(path) == holder:  # still the same stale record (another run may have taken it over first)
            _remove(path)
        if _create(path, data):
            return StageLock(path, record)
        holder = read(path)
    raise busy(path, what, holder)


def busy(path: str, what: str, holder: dict | None) -> CurateError:
    """The one-line error for a lock another run holds."""
    return CurateError(f"{what}: {path.rsplit('/', 1)[0]} is locked by another run: {describe(holder)}; "
                       "if that run is gone, rerun with --force-unlock")


def force_unlock(path: str, what: str) -> None:
    """Remove the lock file `path` whoever holds it (--force-unlock), with a warning naming the holder."""
    if fs.exists(path):
        log.warning("%s: --force-unlock: removing the lock of %s (%s)", what, describe(read(path)), path)
        _remove(path)


def held_by_other(path: str) -> dict | None:
    """The record of a live lock at `path` (not ours to ignore), or None when there is none or it is stale."""
    if not fs.exists(path):
        return None
    holder = read(path)
    return None if holder is not None and stale(holder) else (holder or {})


def read(path: str) -> dict | None:
    """The lock's record; None when the file is missing, empty or not JSON."""
    try:
        record = fs.read_json(path)
    except (FileNotFoundError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def stale(record: dict) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    pid = record.get("pid")
    if record.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _protocols(ffs) -> tuple[str, ...]:
    return ffs.protocol if isinstance(ffs.protocol, tuple) else (ffs.protocol,)


def _create(path: str, data: bytes) -> bool:
    """Create `path` holding `data` if it does not exist; False when it does (someone holds the lock)."""
    ffs, p = fs.url_to_fs(path)
    protocols = _protocols(ffs)
    if "file" in protocols:
        return _create_local(p, data)
    if "s3" in protocols:
        created = _create_s3(ffs, p, data)
        if created is not None:
            return created
    if "gs" in protocols or "gcs" in protocols:
        try:
            ffs.pipe_file(p, data, mode="create")  # gcsfs: an upload with ifGenerationMatch=0
        except FileExistsError:
            return False
        except OSError as exc:
            if "412" in str(exc) or "recondition" in str(exc):
                return False
            raise
        except TypeError:  # a gcsfs without mode="create": the general case below
            pass
        else:
            return True
    log.warning("lock %s: the store (%s) gives no atomic create; two runs starting at the same moment could both "
                "take it", path, "/".join(protocols))
    if ffs.exists(p):
        return False
    ffs.pipe_file(p, data)
    return True


def _create_local(p: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return True


def _create_s3(ffs, p: str, data: bytes) -> bool | None:
    """A conditional PUT; None when the store does not implement one (some S3-compatible servers)."""
    bucket, key, _ = ffs.split_path(p)
    try:
        ffs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
    except FileExistsError:  # s3fs's translation of PreconditionFailed on If-None-Match
        return False
    except OSError as exc:
        # a 412 s3fs did not recognise, or 409 ConditionalRequestConflict: another conditional PUT won
        text = f"{exc} {exc.__cause__ or ''}"
        if exc.errno == errno.EINVAL and "recondition" in text or "ConditionalRequestConflict" in text:
            return False
        if "NotImplemented" in text:
            return None
        raise
    finally:
        ffs.invalidate_cache(p)
    return True


def _remove(path: str) -> None:
    ffs, p = fs.url_to_fs(path)
    try:
        if "file" in _protocols(ffs):
            os.remove(p)
        else:
            ffs.rm(p)
    except FileNotFoundError:
        pass
