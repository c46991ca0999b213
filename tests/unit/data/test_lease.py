"""The workspace's lease (``data/lease.py``): one job at a time writes an ``output_dir``, on a local
disk and on an object store; a lease whose job is gone is taken over; the lease goes with its job."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pyarrow.fs as pafs
import pytest

from fake2real.data import storage
from fake2real.data.lease import LEASE_FILE, _pid_namespace, hold
from fake2real.data.storage import Location, get_bytes, is_file, put_bytes
from fake2real.errors import InUseError

QUICK = {"settle_s": 0.0}


@pytest.fixture
def memory():
    """``mem://…``: one in-memory object store for the test (no create-if-absent, as S3)."""
    storage.register_filesystem("mem", pafs._MockFileSystem())
    yield
    storage.register_filesystem("mem", None)


def _lease(folder) -> dict:
    return json.loads(get_bytes(Location(folder) / LEASE_FILE))


def _write_lease(folder, **fields) -> None:
    now = time.time()
    lease = {"host": "elsewhere", "pid": 4242, "pidns": "pid:[1]", "started": now - 3600, "renewed": now, "token": "theirs", **fields}
    put_bytes(Location(folder) / LEASE_FILE, json.dumps(lease).encode())


def test_a_second_job_is_refused_in_one_line_while_the_first_holds_the_lease(tmp_path):
    out = tmp_path / "out"
    with hold(out, **QUICK):
        held = _lease(out)
        with pytest.raises(InUseError) as refused:
            with hold(out, **QUICK):
                pytest.fail("a second job went on")
        assert _lease(out) == held  # the refused job leaves the holder's lease as it was
    message = str(refused.value)
    assert re.fullmatch(
        rf"output_dir {re.escape(str(out))} is in use by another job \(host {re.escape(socket.gethostname())}, pid {os.getpid()}, "
        rf"since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC; its lease was renewed 0 s ago\): wait for it, "
        rf"or remove {re.escape(str(out / LEASE_FILE))} if that job is gone", message), message


def test_a_live_lease_of_another_host_is_refused_and_a_stale_one_taken_over(tmp_path, capsys):
    _write_lease(tmp_path, renewed=time.time() - 120)
    with pytest.raises(InUseError, match=r"\(host elsewhere, pid 4242, since .* UTC; its lease was renewed 120 s ago\)"):
        with hold(tmp_path, **QUICK):
            pass
    assert _lease(tmp_path)["token"] == "theirs"
    _write_lease(tmp_path, renewed=time.time() - 700)  # not renewed for more than 10 minutes: its job is gone
    with hold(tmp_path, **QUICK):
        assert _lease(tmp_path)["token"] != "theirs" and _lease(tmp_path)["pid"] == os.getpid()
    assert capsys.readouterr().out == (f"[workspace] taking over output_dir {tmp_path} from a job that is gone "
                                       "(host elsewhere, pid 4242: last renewed 700 s ago)\n")
    assert not is_file(Location(tmp_path) / LEASE_FILE)


def test_the_lease_of_a_process_of_this_host_that_ended_is_taken_over_at_once(tmp_path, capsys):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    here = {"host": socket.gethostname(), "pid": ended.pid, "pidns": _pid_namespace()}
    _write_lease(tmp_path, **here)  # a driver killed a moment ago (kill -9), run again
    with hold(tmp_path, **QUICK):
        assert _lease(tmp_path)["pid"] == os.getpid()
    assert "(host" in capsys.readouterr().out
    # The same pid elsewhere (another host, or another pid namespace of this one) proves nothing.
    for elsewhere in ({"host": "elsewhere"}, {"pidns": "pid:[1]"}):
        _write_lease(tmp_path, **{**here, **elsewhere})
        with pytest.raises(InUseError):
            with hold(tmp_path, **QUICK):
                pass


def test_the_lease_is_removed_when_the_job_ends_also_on_an_error(tmp_path):
    with hold(tmp_path, **QUICK):
        assert is_file(Location(tmp_path) / LEASE_FILE)
    assert not is_file(Location(tmp_path) / LEASE_FILE)
    with pytest.raises(ValueError, match="the job's own error"):
        with hold(tmp_path, **QUICK):
            raise ValueError("the job's own error")
    assert not is_file(Location(tmp_path) / LEASE_FILE)
    with hold(tmp_path, **QUICK):  # free again
        pass


def test_a_lease_is_renewed_while_its_job_runs(tmp_path):
    with hold(tmp_path, renew_s=0.05, **QUICK):
        first = _lease(tmp_path)
        time.sleep(0.5)
        later = _lease(tmp_path)
    assert later["token"] == first["token"] and later["renewed"] > first["renewed"] and later["started"] == first["started"]


def test_of_two_jobs_starting_at_once_on_an_object_store_one_goes_on(memory):
    outcomes, inside = [], threading.Barrier(2, timeout=10)

    def job():
        try:
            with hold("mem://bucket/out", settle_s=0.5):
                outcomes.append("held")
                time.sleep(1.0)  # the other job's read-back falls within this one's hold
        except InUseError as error:
            outcomes.append(str(error))

    def at_once():
        inside.wait()
        job()

    threads = [threading.Thread(target=at_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    refused = [outcome for outcome in outcomes if outcome != "held"]
    assert len(outcomes) == 2 and len(refused) == 1, outcomes
    assert refused[0].startswith("output_dir mem://bucket/out is in use by another job"), refused
    assert not is_file(Location("mem://bucket/out") / LEASE_FILE)


def test_the_lease_lines_name_the_workspace_without_credentials(memory, capsys):
    out = "mem://SECRET-TOKEN@bucket/out"  # userinfo with no ":": a path the in-memory store takes
    _write_lease(out, renewed=time.time() - 700)
    with hold(out, **QUICK):
        with pytest.raises(InUseError) as refused:
            with hold(out, **QUICK):
                pass
    printed = capsys.readouterr().out
    assert "SECRET" not in printed + str(refused.value)
    assert printed.startswith("[workspace] taking over output_dir mem://***@bucket/out from a job that is gone")
    assert str(refused.value).startswith("output_dir mem://***@bucket/out is in use by another job")
    assert str(refused.value).endswith("or remove mem://***@bucket/out/.lock.json if that job is gone")
