"""Jobs that write the workspace hold its lease (``data/lease.py``): while another job holds
``output_dir``, they are refused in one line before they write anything; dry runs write and hold
nothing. No Ray starts: ``ray.init`` fails the test."""

from __future__ import annotations

import pytest
import ray

import fake2real.data.lease as lease
import fake2real.run.capacity as capacity
from fake2real.data.storage import Location, is_file
from fake2real.entrypoints import generate_dry_run, generate_job, ingest_job, sweep_dry_run, sweep_job, train_job
from fake2real.errors import InUseError


@pytest.fixture
def config(make_config, tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    monkeypatch.setattr(capacity, "local_cluster_cpus", lambda: None)  # this machine's cores are no part of it
    monkeypatch.setattr(lease, "SETTLE_S", 0.0)
    return make_config(f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.mark.parametrize("job", [ingest_job, generate_job, train_job, sweep_job])
def test_a_job_is_refused_while_another_holds_its_output_dir_before_it_writes(config, tmp_path, job):
    out = tmp_path / "out"
    with lease.hold(out, settle_s=0):
        with pytest.raises(InUseError, match=rf"^output_dir {out} is in use by another job \(host .*\): wait for it, or remove "):
            job(config)
        assert sorted(path.name for path in out.iterdir()) == [lease.LEASE_FILE]  # nothing of the job's own
    assert not out.joinpath(lease.LEASE_FILE).exists()


def test_dry_runs_neither_hold_nor_wait_for_the_lease(config, tmp_path):
    out = tmp_path / "out"
    with lease.hold(out, settle_s=0):
        assert "stages to train after sharing" in sweep_dry_run(config)
        assert generate_dry_run(config).startswith("pool ")
        holder = (out / lease.LEASE_FILE).read_bytes()
    assert holder and not is_file(Location(out) / lease.LEASE_FILE)
