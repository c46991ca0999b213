"""A job's lease on the workspace it writes (``output_dir``): one such job at a time.

Two jobs writing one ``output_dir`` (two users, or a job submitted again while the first still
runs) would top up the same pool at once, and one would fail on its row count. So a job that
writes the workspace holds ``<output_dir>/.lock.json``: its host, pid (and pid namespace), start,
a random token and when it last renewed it, which a thread of the job does every ``RENEW_S``.
The job removes it when it ends, also on an error. Another job finding the lease is refused in one
line, unless the lease is stale: not renewed for ``STALE_S`` (its job died without removing it),
or held by a process of this host that is gone (a killed driver run again at once); then it is
taken over.

Local disks and object stores alike go through ``data/storage.py``, which has no create-if-absent
on an object store: a job writes its lease, waits ``SETTLE_S`` and reads it back; of two jobs that
start within that moment the last write wins and the other is refused. A job whose read of the
workspace comes after another's write-back sees that job's lease. Staleness compares the hosts'
clocks, which must agree within a good part of ``STALE_S``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager

from fake2real.data.storage import Location, delete_file, get_bytes, is_file, put_bytes
from fake2real.errors import DataError, InUseError, redact

LEASE_FILE = ".lock.json"
RENEW_S = 30.0
STALE_S = 600.0
SETTLE_S = 1.0


def _pid_namespace() -> str | None:
    """This process's pid namespace (Linux): a pid names the same process only within it."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _read(location: Location) -> dict | None:
    try:
        return json.loads(get_bytes(location)) if is_file(location) else None
    except (OSError, DataError, ValueError):  # removed meanwhile, unreadable or garbled: no lease to honour
        return None


def _write(location: Location, lease: dict) -> None:
    put_bytes(location, json.dumps(lease, sort_keys=True).encode())


def _gone_here(lease: dict) -> bool:
    """Whether the lease's process ran on this host, in this pid namespace, and has ended."""
    if lease.get("host") != socket.gethostname() or not lease.get("pidns") or lease.get("pidns") != _pid_namespace():
        return False
    try:
        os.kill(int(lease["pid"]), 0)  # signal 0: asks whether it exists, sends nothing
    except ProcessLookupError:
        return True
    except (OSError, ValueError, KeyError, TypeError):  # another user's process, or a malformed pid: alive
        return False
    return False


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _in_use(what: str, folder: Location, lease: dict | None) -> InUseError:
    if lease is None:  # it changed again between this job's write and its read-back
        held = "its lease changed while this job took it"
    else:
        renewed = max(0, int(time.time() - float(lease.get("renewed", 0))))
        held = (f"host {lease.get('host')}, pid {lease.get('pid')}, since {_utc(float(lease.get('started', 0)))}; "
                f"its lease was renewed {renewed} s ago")
    return InUseError(redact(f"{what} {folder} is in use by another job ({held}): wait for it, "
                             f"or remove {folder / LEASE_FILE} if that job is gone"))


def _renew(location: Location, mine: dict, stop: threading.Event, renew_s: float) -> None:
    while not stop.wait(renew_s):
        found = _read(location)
        if found is not None and found.get("token") != mine["token"]:  # taken over: this job was thought gone
            print(redact(f"[workspace] warning: another job took over the lease {location} (host {found.get('host')}, "
                         f"pid {found.get('pid')}); two jobs now write this workspace"), flush=True)
            return
        mine["renewed"] = time.time()
        try:
            _write(location, mine)
        except (OSError, DataError):  # the store did not answer this time: the next renewal tries again
            pass


@contextmanager
def hold(folder: str | os.PathLike, what: str = "output_dir", renew_s: float = RENEW_S, stale_s: float = STALE_S,
         settle_s: float = SETTLE_S):
    """Hold ``folder``'s lease while the block runs: refused (``InUseError``) when another live job
    holds it, taken over when its holder is gone, removed at the end."""
    folder = Location(folder)
    location = folder / LEASE_FILE
    found = _read(location)
    if found is not None:
        age = time.time() - float(found.get("renewed", 0))
        if age < stale_s and not _gone_here(found):
            raise _in_use(what, folder, found)
        why = f"last renewed {int(age)} s ago" if age >= stale_s else "its process has ended"
        print(redact(f"[workspace] taking over {what} {folder} from a job that is gone "
                     f"(host {found.get('host')}, pid {found.get('pid')}: {why})"), flush=True)
    now = time.time()
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "pidns": _pid_namespace(), "started": now, "renewed": now,
            "token": uuid.uuid4().hex}
    _write(location, mine)
    time.sleep(settle_s)  # a job that started at the same moment writes its own now: the last write wins
    found = _read(location)
    if found is None or found.get("token") != mine["token"]:
        raise _in_use(what, folder, found)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(location, mine, stop, renew_s), name="fake2real-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=10)
        try:
            if (_read(location) or {}).get("token") == mine["token"]:  # never another job's lease
                delete_file(location)
        except (OSError, DataError):  # left behind, it goes stale: never hide the job's own outcome
            pass
