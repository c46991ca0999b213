"""A stage's record: its result, the done marker ``stage_result.json`` in its run folder, and
finding it again (``finished_stage``), by its key or, for a stage stored before keys were
relative, by its legacy key (docs/design.md §5). Plain files: planning a sweep (the dry run) reads
these without Ray or torch; ``train/stage.py`` trains a stage and writes its marker here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

import pyarrow.fs

from fake2real.data.markers import read_marker, write_marker
from fake2real.data.storage import Location, relative_to
from fake2real.train.spec import StageSpec

RESULT_FILE = "stage_result.json"


@dataclass
class StageResult:
    key: str
    checkpoint_uri: str
    metrics: dict = field(default_factory=dict)
    reused: bool = False
    legacy_key: str | None = None  # found stored under the key it had before keys were relative


def last_component(uri: str) -> str:
    """The last part of a path or URI (a checkpoint's folder name)."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _stored(storage: Location, run_name: str) -> StageResult | None:
    """The result marked done in the run folder ``run_name``, its checkpoint under ``storage`` as it is now."""
    done = read_marker(storage / run_name / RESULT_FILE)
    if done is None:
        return None
    if "checkpoint" in done:  # relative to the runs folder (absolute only if it never was in it)
        relative = "://" not in done["checkpoint"] and not done["checkpoint"].startswith("/")
        checkpoint = str(storage / done["checkpoint"]) if relative else done["checkpoint"]
    else:  # written before: absolute, a folder of this run's (wherever the workspace was then)
        checkpoint = str(storage / run_name / last_component(done["checkpoint_uri"]))
    return StageResult(done["key"], checkpoint, done.get("metrics", {}), reused=True)


# runs folder → {run folder: where its marker says the workspace was (None: nowhere else)}, read
# once per process; the experiments of a sweep ask from threads.
_FORMER: dict[str, dict[str, str | None]] = {}
_FORMER_LOCK = threading.Lock()


def _former_roots(storage: Location, workspace: str) -> list[str]:
    """Where the workspace was when its old markers were written: their absolute checkpoint URIs
    end in ``<runs folder>/<run>/<checkpoint>``, what is before is the workspace they were keyed in."""
    runs = relative_to(str(storage), workspace)
    if runs is None:
        return []
    fs, path = storage.filesystem()
    with _FORMER_LOCK:
        seen = _FORMER.setdefault(str(storage), {})
        folders = [info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
                   if info.type == pyarrow.fs.FileType.Directory]
        for folder in folders:
            if folder in seen:
                continue
            old = (read_marker(storage / folder / RESULT_FILE) or {}).get("checkpoint_uri", "")
            suffix = f"/{runs}/{folder}/{last_component(old)}"
            seen[folder] = old[: -len(suffix)] if old.endswith(suffix) and old[: -len(suffix)] != workspace else None
        return sorted({root for root in seen.values() if root is not None})


def finished_stage(spec: StageSpec, storage: str) -> StageResult | None:
    """The stage's result when it finished earlier (its done marker), else None; one stored under
    its legacy key is found too (``legacy_key`` set), and nothing is written (a dry run asks)."""
    storage = Location(storage)
    found = _stored(storage, spec.run_name)
    if found is not None or spec.workspace is None:
        return found
    for root in [spec.workspace, *_former_roots(storage, spec.workspace)]:
        legacy = spec.legacy_key(root)
        if legacy == spec.key():  # nothing of the workspace in its key
            return None
        found = _stored(storage, f"{spec.name}-{legacy}")
        if found is not None:
            return replace(found, key=spec.key(), legacy_key=legacy)
    return None


def mark_done(spec: StageSpec, storage: Location, result: StageResult) -> None:
    """The done marker under the stage's key: its checkpoint relative to the runs folder (an
    adopted stage's: the old run's), so it is found wherever the workspace goes."""
    checkpoint = relative_to(result.checkpoint_uri, storage) or result.checkpoint_uri
    marker = {"key": spec.key(), "checkpoint": checkpoint, "metrics": result.metrics}
    write_marker(storage / spec.run_name / RESULT_FILE, marker | ({"adopted_from": result.legacy_key} if result.legacy_key else {}))
