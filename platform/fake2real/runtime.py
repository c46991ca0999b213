"""Connecting to Ray: the cluster in $RAY_ADDRESS (as under ``ray job submit``), else a local one."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from fake2real.interrupt import catch_again
from fake2real.lazy import lazy_module

# Imported at first use: a dry run, or a job that fails its checks, never starts Ray.
ray = lazy_module("ray")


def init_ray() -> None:
    if ray.is_initialized():
        return
    ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=True)
    catch_again()  # ray.init put its own SIGTERM handler in place of the job's (interrupt.py)


# Ray forwards its workers' stderr to the driver on a thread of its own (log_to_driver), lines a
# log monitor publishes some 0.1-1 s after a worker wrote them: a failed worker's traceback comes
# after the error the driver already holds. Before printing that error, the driver waits until
# nothing has been forwarded for FORWARD_QUIET_S (at most FORWARD_WAIT_S), then shuts Ray down,
# which stops the forwarding (and prints what its deduplication held back) — at most SHUTDOWN_WAIT_S.
FORWARD_QUIET_S, FORWARD_WAIT_S, SHUTDOWN_WAIT_S = 1.0, 5.0, 15.0


def stop_ray(wait_for_lines: bool = True) -> None:
    """Let the lines Ray forwards from workers arrive (unless the job was stopped: not worth a
    wait), then stop them: what the driver prints next is the last thing it prints (an error line,
    ``cli.main``). Nothing when Ray is not up."""
    if "ray" not in sys.modules or not ray.is_initialized():  # never imported: never started
        return
    if wait_for_lines:
        _wait_for_forwarded_lines()
    stopping = threading.Thread(target=ray.shutdown, name="fake2real-ray-shutdown", daemon=True)
    stopping.start()
    stopping.join(SHUTDOWN_WAIT_S)  # a cluster that does not answer must not hold the error back


def _wait_for_forwarded_lines() -> None:
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # Ray moved its dispatcher: wait as long as a quiet spell would
        time.sleep(FORWARD_QUIET_S)
        return
    last = [time.monotonic()]
    name = "fake2real_last_forwarded"
    dispatcher.add_handler(name, lambda batch: last.__setitem__(0, time.monotonic()))
    try:
        deadline = time.monotonic() + FORWARD_WAIT_S
        while time.monotonic() < deadline and time.monotonic() - last[0] < FORWARD_QUIET_S:
            time.sleep(0.05)
    finally:
        dispatcher.remove_handler(name)


# Where Ray Train 2.60 logs the traceback of an exception a worker's training function raised
# (``construct_user_exception_with_traceback``), on the worker's stderr, forwarded to the driver.
RAY_TRAIN_USER_ERROR_LOGGER = "ray.train.v2._internal.util"


def _not_ours(record: logging.LogRecord) -> bool:
    lines = record.getMessage().rstrip().splitlines()
    return not (lines and lines[-1].startswith("fake2real.errors."))


def quiet_own_tracebacks() -> None:
    """In a Ray Train worker: a fake2real error the training function raises reaches the driver,
    which prints it in one line (``cli.main``); Ray Train's traceback of it, forwarded to the
    driver's stderr once per worker, would only repeat it. Any other exception keeps its traceback."""
    logging.getLogger(RAY_TRAIN_USER_ERROR_LOGGER).addFilter(_not_ours)


def local_cluster_cpus() -> float | None:
    """The CPUs of the local cluster ``init_ray`` will start, counted as Ray counts them (a
    container's CPU limit included), when it will start one: no $RAY_ADDRESS, no cluster a ``ray
    start`` recorded on this machine (``ray.init()`` would join it) and Ray not up. None when the
    job joins a cluster: that one is sized once Ray is up (``check_cluster``)."""
    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        return None
    try:
        from ray._private.services import find_bootstrap_address
        from ray._private.utils import get_num_cpus

        if find_bootstrap_address(None) is not None:
            return None
        return float(get_num_cpus(override_docker_cpu_warning=True))
    except Exception:  # Ray's private helpers moved: unknown here, checked once Ray is up
        return None


def autoscaler_max() -> dict | None:
    """The most of each resource the cluster's autoscaler can provide (its node types × their
    max counts); ``{}`` when it provides an unknown amount; None without an autoscaler.

    Ray 2.60's autoscalers do not publish their config in the GCS (Ray's own reader, used first,
    finds nothing), so the launcher's and the local cluster's limits are read from the file
    the head's autoscaler was started with, when this driver runs on the head (``ray job
    submit``). KubeRay's autoscaler runs in a container of its own: a known autoscaler, limits
    unknown."""
    from ray._private.state import state

    try:
        reported = state.get_max_resources_from_cluster_config()
    except Exception:  # an older or newer GCS without the config
        reported = None
    if reported:
        return reported
    config = autoscaling_config_path(int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]))
    if config is not None:
        return max_resources(config)
    return {} if os.environ.get("RAY_USAGE_STATS_KUBERAY_IN_USE") == "1" else None


def autoscaling_config_path(gcs_port: int, proc: Path = Path("/proc")) -> Path | None:
    """The ``--autoscaling-config`` of the autoscaler (Ray's monitor process) of the cluster whose
    GCS listens on ``gcs_port``, when it runs on this machine."""
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone, or not ours to read
            continue
        if not any(arg.endswith(("autoscaler/_private/monitor.py", "autoscaler/v2/monitor.py")) for arg in args):
            continue
        options = dict(arg.removeprefix("--").split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)
        if options.get("gcs-address", "").rsplit(":", 1)[-1] == str(gcs_port) and options.get("autoscaling-config"):
            path = Path(options["autoscaling-config"]).expanduser()
            return path if path.is_file() else None
    return None


def max_resources(config: Path) -> dict[str, float]:
    """A cluster launcher config's most of each resource: the head's, plus each worker type's
    ``max_workers`` nodes (at most the cluster's ``max_workers``)."""
    import yaml

    cluster = yaml.safe_load(config.read_text())
    total: dict[str, float] = {}
    for name, node_type in cluster.get("available_node_types", {}).items():
        count = 1 if name == cluster.get("head_node_type") else min(node_type.get("max_workers", 0), cluster.get("max_workers", 0))
        for resource, amount in (node_type.get("resources") or {}).items():
            total[resource] = total.get(resource, 0.0) + count * float(amount)
    return total


def cluster_capacity() -> tuple[dict[str, float], bool]:
    """The most of each resource the cluster can hold — what its autoscaler may add (an
    autoscaling cluster may have no worker yet) or what it has now, whichever is more — and
    whether an autoscaler may add more than that (its limits unknown)."""
    current, scalable = ray.cluster_resources(), autoscaler_max()
    known = scalable or {}
    return {name: max(current.get(name, 0.0), known.get(name, 0.0)) for name in {*current, *known}}, scalable == {}


def missing_resources(request: dict[str, float], cluster: dict[str, float]) -> dict[str, float]:
    """What ``request`` (resource → amount) needs beyond ``cluster``'s totals."""
    return {name: amount - cluster.get(name, 0.0) for name, amount in request.items() if amount > cluster.get(name, 0.0)}


def require_resources(bundle: dict[str, float], count: int, what: str, wait_s: float, poll_s: float = 10.0) -> None:
    """Fail in one line when the cluster can never hold ``count`` × ``bundle`` (one worker's
    resources); when only an autoscaler can provide them, ask it for them and wait (up to
    ``wait_s``, saying what is pending). Asking matters: before the first stage nothing else
    demands the resources, so an autoscaler would add no node."""
    import time

    from ray.autoscaler.sdk import request_resources

    from fake2real.errors import ClusterError

    request = {name: amount * count for name, amount in bundle.items()}
    missing = missing_resources(request, ray.cluster_resources())
    if not missing:
        return
    scalable = autoscaler_max()
    # Unknown limits ({}): nothing is refused at once; the wait below is the bound.
    beyond = {} if scalable == {} else {name: amount for name, amount in missing.items() if (scalable or {}).get(name, 0.0) < request[name]}
    wanted = ", ".join(f"{amount:g} {name}" for name, amount in request.items())
    if beyond:
        have = ", ".join(f"{ray.cluster_resources().get(name, 0):g} {name}" for name in beyond)
        raise ClusterError(f"{what} needs {wanted}, but the Ray cluster has {have} and no autoscaler node type provides more")
    deadline = time.monotonic() + wait_s
    request_resources(bundles=[bundle] * count)
    try:
        while missing:
            if time.monotonic() >= deadline:
                raise ClusterError(f"{what} needs {wanted}; the autoscaler did not provide it within train.resource_wait_s={wait_s:g} s")
            print(f"[cluster] {what}: waiting for the autoscaler to add {', '.join(f'{a:g} {n}' for n, a in missing.items())} "
                  f"({deadline - time.monotonic():.0f} s left of train.resource_wait_s)", flush=True)
            time.sleep(poll_s)
            missing = missing_resources(request, ray.cluster_resources())
    finally:
        request_resources(bundles=[])  # the stage's own demand keeps the nodes from here on


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def node_local_tracking(uri: str) -> str | None:
    """Why ``uri`` reaches only the machine it runs on (a loopback server, a sqlite or file
    store on its disk), or None when every node can reach it."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        host = (parsed.hostname or "").lower()
        return f"{host} is each machine's own loopback" if host in LOOPBACK_HOSTS or host.startswith("127.") else None
    if parsed.scheme in ("sqlite", "file", ""):
        return "it is a store on this machine's disk"
    return None


def check_tracking_for_cluster(uri: str) -> None:
    """Refuse a tracking URI that workers on other nodes would resolve to their own machine
    (e.g. a port-forward's 127.0.0.1:5000): their runs would be lost or split."""
    from fake2real.errors import ConfigError

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    reason = node_local_tracking(uri)
    if len(nodes) > 1 and reason:
        raise ConfigError(
            f"config: tracking.uri: {uri} cannot serve a {len(nodes)}-node Ray cluster: {reason}; "
            "use the tracking server's address that every node reaches (cluster/README.md)"
        )
