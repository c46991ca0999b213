"""cluster/local-autoscaling.yaml, the cluster to try first: Ray's schema and checks, shaped like
the cloud files (a head that runs no training, one worker type scaling from 0, an idle timeout of
tens of seconds), and the commented GCS address the cluster test fills in."""

from __future__ import annotations

import jsonschema

from fake2real.config import build_config
from fake2real.presets import PRESETS
from fake2real.run.capacity import TRIAL_DRIVER_CPUS
from test_cluster_files import CLUSTER, load, ray_schema, where

WORKERS = 2  # per stage in tests/integration/test_autoscaling_cluster.py (its WORKERS)

LOCAL = CLUSTER / "local-autoscaling.yaml"


def test_it_validates_against_rays_schema_and_checks():
    from ray.autoscaler._private.util import validate_config

    config = load(LOCAL)
    errors = [f"{where(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(ray_schema()).iter_errors(config)]
    assert not errors, errors
    validate_config(config)


def test_it_is_shaped_like_the_cloud_clusters():
    config = load(LOCAL)
    assert config["provider"]["type"] == "fake_multinode"
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    (worker,) = [spec for name, spec in types.items() if name != config["head_node_type"]]
    assert (worker["min_workers"], worker["max_workers"], config["max_workers"]) == (0, 2, 2)
    assert 10 <= config["idle_timeout_minutes"] * 60 <= 90
    # A trial of the autoscaling test's smoke sweep (its trainer's workers and its own driver) fits one worker node.
    smoke = build_config(base=PRESETS["smoke"]).train
    assert worker["resources"]["CPU"] >= WORKERS * smoke.cpus_per_worker + TRIAL_DRIVER_CPUS


def test_the_head_port_line_is_there_to_fill_in():
    # tests/integration/cluster_stack.py replaces it with the test head's port.
    assert "# gcs_address: 127.0.0.1:6379" in LOCAL.read_text()
