"""How much of the cluster a sweep uses at once: trainers of ``train`` it holds, a search's trials
and a sweep's experiments side by side, what a trial's own process holds, and the check of a local
cluster's size before Ray starts. The search and the sweep ask; nothing here runs anything."""

from __future__ import annotations

from fake2real.config import ExperimentConfig
from fake2real.errors import ConfigError
from fake2real.runtime import cluster_capacity, local_cluster_cpus
from fake2real.train.spec import Resources

# A trial's own process that only waits on its TorchTrainer: a sliver of a CPU (Tune refuses 0).
TRIAL_DRIVER_CPUS = 0.1
TRIAL_DRIVER_TEXT = f" + {TRIAL_DRIVER_CPUS} for its driver"


def concurrent_trials(config: ExperimentConfig) -> int:
    """Trials at once: as many trainers as the cluster's GPUs (or CPUs) hold, at least one; on an
    autoscaling cluster, as many as its largest size holds (the demand is what makes it grow)."""
    search = config.sweep.search
    return search.max_concurrent_trials or trainers_at_once(config, *trial_driver(config))


def experiments_at_once(config: ExperimentConfig) -> int:
    """Experiments of a sweep trained at once (``sweep.max_concurrent_experiments``, else as many
    as the cluster holds): each waits on its own trainer from a thread of the driver."""
    return config.sweep.max_concurrent_experiments or trainers_at_once(config, 0.0, "an experiment's stage", "")


def trainers_at_once(config: ExperimentConfig, extra_cpus: float, what: str, extra_text: str,
                     capacity: tuple[dict[str, float], bool] | None = None, cluster: str = "the cluster") -> int:
    """How many trainers of ``config.train`` (each with ``extra_cpus`` beside it) the cluster
    holds (``capacity``: its resources and whether it may grow; default: the running cluster's)."""
    train = config.train
    resources, may_grow = capacity or cluster_capacity()
    per_trainer = train.num_workers * train.cpus_per_worker + extra_cpus
    by_cpu = int(resources.get("CPU", 0) // per_trainer)
    if train.use_gpu:  # an autoscaling cluster may have no GPU node yet: at least one
        return max(1, min(int(resources.get("GPU", 0) // train.num_workers), by_cpu))
    if by_cpu < 1 and may_grow:  # an autoscaler of unknown limits: one at a time, unless told
        return 1
    if by_cpu < 1:
        raise ConfigError(
            f"config: {what} needs {per_trainer:g} CPUs (train.num_workers × train.cpus_per_worker{extra_text}) "
            f"but {cluster} has {resources.get('CPU', 0):g}: lower train.cpus_per_worker"
        )
    return by_cpu


def check_local_cluster(config: ExperimentConfig) -> None:
    """Before Ray starts (and before any MLflow run): when the job will start a local cluster, a
    trainer — a search trial's with its driver — that needs more CPUs than this machine has is
    refused now, with the message the running cluster's check gives (``trainers_at_once``)."""
    cpus = local_cluster_cpus()
    if cpus is None:
        return
    local = ({"CPU": cpus}, False), "the local Ray cluster the job starts without RAY_ADDRESS"
    if config.sweep.search.num_samples:
        trainers_at_once(config, *trial_driver(config), *local)
    trainers_at_once(config, 0.0, "an experiment's stage", "", *local)




def trial_driver(config: ExperimentConfig) -> tuple[float, str, str]:
    """(CPUs a trial's process holds besides its workers', what a trial is, the addition's words):
    none when its single-worker stages train in that process (train/local.py)."""
    if config.train.num_workers == 1:
        return 0.0, "a search trial", ""
    return TRIAL_DRIVER_CPUS, "a search trial", TRIAL_DRIVER_TEXT


def trial_resources(config: ExperimentConfig) -> dict[str, float]:
    """What a trial's process holds: its worker's resources when its stages train in it, else a
    sliver of a CPU to wait on its ``TorchTrainer``."""
    if config.train.num_workers == 1:
        return Resources.of(config.train).bundle()
    return {"CPU": TRIAL_DRIVER_CPUS}
