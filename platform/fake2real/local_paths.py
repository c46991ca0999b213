"""A config's local paths made absolute once, in the driver, against the folder the job started in.

A Tune trial runs in its own folder (Ray's ``RAY_CHDIR_TO_TRIAL_DIR``) and a remote worker in
its own, so a relative path named another place there: with ``output_dir: outputs`` every trial
had its own workspace, ingested the real table and trained FFR's shared stage 1 again.
``cli.load`` resolves every local path a config holds, before anything reaches a trial or a worker.

URIs (``s3://…``, ``file://…``), keywords (``imagenet``, ``none``, a built-in prompt template, a
Hugging Face model id) and absolute paths are left exactly as written. ``output_dir`` and
``tracking.uri`` say where results go and are in one key only, the sweep's: it keeps them as
written (``ExperimentConfig.digest``), so a sweep run from its folder keeps its key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from fake2real.config import ExperimentConfig
from fake2real.track.mlflow_runs import absolute_sqlite
from fake2real.train.spec import IMAGENET


def _local(value: str) -> bool:
    return "://" not in value


# Every config key that may hold a local path → whether its value is one.
LOCAL_PATHS: dict[str, Callable[[str], bool]] = {
    "output_dir": _local,
    "dataset.root": _local,
    "dataset.table": _local,
    "generation.output": _local,
    "generation.real_table": _local,
    # Without a suffix: a built-in template's name (prompts.load_template).
    "generation.prompts": lambda v: _local(v) and bool(Path(v).suffix),
    "generation.folder.root": _local,
    # Not a folder here: a model id, read from the local Hugging Face cache (as diffusers decides).
    "generation.diffusers.model": lambda v: _local(v) and Path(v).is_dir(),
    "generation.group_diffusion.model": _local,
    "train.pretrained": lambda v: _local(v) and v not in (IMAGENET, "none"),
    "train.loader.stream_dir": _local,
}
# Where results go: in the sweep's key as written (see the module's docstring).
AS_WRITTEN = ("output_dir", "tracking.uri")


def _absolute(key: str, value: Any) -> Any:
    if key == "tracking.uri":
        return absolute_sqlite(value) if isinstance(value, str) else value
    if not isinstance(value, str) or not value or not LOCAL_PATHS[key](value) or Path(value).is_absolute():
        return value
    return str(Path(value).absolute())  # as data/storage.Location makes it: stage keys hold such paths


def _node(data: dict, dotted: str) -> tuple[dict, str]:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data[part]
    return data, leaf


def resolve_paths(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with every local path absolute (the same object when none is relative)."""
    data = config.model_dump()
    written: dict[str, str] = {}
    for key in [*LOCAL_PATHS, "tracking.uri"]:
        node, leaf = _node(data, key)
        value = _absolute(key, node[leaf])
        if value != node[leaf]:
            written[key], node[leaf] = node[leaf], value
    axes = data["sweep"]["axes"]
    for key, values in axes.items():  # a point's value is set at its key in each cell
        if key in LOCAL_PATHS:
            resolved = [_absolute(key, value) for value in values]
            if resolved != values:
                written[f"sweep.axes.{key}"], axes[key] = values, resolved
    if not written:
        return config
    resolved = ExperimentConfig.cell(data)  # only paths changed: the grid was checked with the config
    resolved._written = {**config._written, **{key: value for key, value in written.items() if key in AS_WRITTEN}}
    return resolved
