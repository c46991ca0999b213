"""Connecting to Ray: the cluster in $RAY_ADDRESS (as under ``ray job submit``), else a local one."""

from __future__ import annotations

import os

import ray


def init_ray() -> None:
    if ray.is_initialized():
        return
    ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=True)


def _autoscaler_max() -> dict | None:
    """The most of each resource the cluster's autoscaler can provide (its node types × their
    max counts); None without an autoscaler config in the GCS (a plain ``ray start`` cluster)."""
    from ray._private.state import state

    try:
        return state.get_max_resources_from_cluster_config()
    except Exception:  # an older or newer GCS without the config: treat as no autoscaler
        return None


def missing_resources(request: dict[str, float], cluster: dict[str, float]) -> dict[str, float]:
    """What ``request`` (resource → amount) needs beyond ``cluster``'s totals."""
    return {name: amount - cluster.get(name, 0.0) for name, amount in request.items() if amount > cluster.get(name, 0.0)}


def require_resources(request: dict[str, float], what: str, wait_s: float, poll_s: float = 10.0) -> None:
    """Fail in one line when the cluster can never hold ``request``; wait (up to ``wait_s``,
    saying what is pending) when only an autoscaler can provide it."""
    import time

    from fake2real.errors import ClusterError

    missing = missing_resources(request, ray.cluster_resources())
    if not missing:
        return
    scalable = _autoscaler_max() or {}
    beyond = {name: amount for name, amount in missing.items() if scalable.get(name, 0.0) < request[name]}
    wanted = ", ".join(f"{amount:g} {name}" for name, amount in request.items())
    if beyond:
        have = ", ".join(f"{ray.cluster_resources().get(name, 0):g} {name}" for name in beyond)
        raise ClusterError(f"{what} needs {wanted}, but the Ray cluster has {have} and no autoscaler node type provides more")
    deadline = time.monotonic() + wait_s
    while missing:
        if time.monotonic() >= deadline:
            raise ClusterError(f"{what} needs {wanted}; the autoscaler did not provide it within train.resource_wait_s={wait_s:g} s")
        print(f"[cluster] {what}: waiting for the autoscaler to add {', '.join(f'{a:g} {n}' for n, a in missing.items())} "
              f"({deadline - time.monotonic():.0f} s left of train.resource_wait_s)", flush=True)
        time.sleep(poll_s)
        missing = missing_resources(request, ray.cluster_resources())


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
