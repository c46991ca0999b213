"""Where a config's artifacts live, and the real table every experiment of a dataset shares.

``output_dir`` is a local folder or a URI (``s3://bucket/prefix``, ``gs://…``, ``file://…``):
tables (``data/``), Ray Train runs and checkpoints (``runs/``) and sweep results (``results/``)
are written through pyarrow filesystems. MLflow artifacts stay on the driver's disk when the
workspace is remote (``<cwd>/mlartifacts``), unless ``tracking.uri`` names a tracking server.
``dataset.table`` names a finished real table that is used as it is instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from fake2real import identity
from fake2real.config import ExperimentConfig
from fake2real.data.datasets import dataset_of
from fake2real.data.groups import check_splits
from fake2real.data.ingest import count_table
from fake2real.data.lease import hold
from fake2real.data.sources import changed_source
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, check_writable, count_groups, is_complete, read_info, schema_problem
from fake2real.errors import DataError, redact


@dataclass
class Workspace:
    root: Location  # ``root / "name"`` joins for local folders and URIs alike; ``str(root)`` is its path or URI

    @classmethod
    def create(cls, config: ExperimentConfig) -> "Workspace":
        return cls(check_writable(config.output_dir))

    def held(self):
        """This job alone writes the workspace while the block runs (``data/lease.py``): a job's
        entry point holds it, never a dry run, nor a trial or worker of the job that holds it."""
        return hold(self.root, "output_dir")

    @property
    def data(self) -> Location:
        return self.root / "data"

    @property
    def runs(self) -> str:
        """Ray Train's ``storage_path`` (Ray takes local paths and URIs)."""
        return str(self.root / "runs")

    @property
    def results(self) -> Location:
        return self.root / "results"

    @property
    def artifacts(self) -> Path:
        """MLflow's artifact root for a sqlite store: local, beside the tables when they are local."""
        return Path(self.root / "mlartifacts") if self.root.is_local else Path.cwd() / "mlartifacts"


def finished_real_table(uri: str, dataset: str) -> Location:
    """``dataset.table``: a complete real table of ``dataset`` (``dataset.name``, which names its
    prompts and reports) with train, val and test rows, none of its groups empty, its columns of
    the contract's types (``data/table.py``)."""
    try:
        location = Location(uri)
        complete = is_complete(location)
    except (DataError, OSError) as exc:
        raise DataError(f"dataset.table: {uri}: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    if not complete:
        raise DataError(f"dataset.table: {uri} is missing or incomplete (no table.json)")
    info = read_info(location)
    if info.source != "real":
        raise DataError(f"dataset.table: {uri} holds a {info.source} table, not a real one")
    if info.dataset != dataset:
        raise DataError(f"dataset.table: {uri} holds dataset '{info.dataset}', not '{dataset}' (set dataset.name: {info.dataset})")
    absent = [split for split in ("train", "val", "test") if not sum(info.group_counts.get(split, {}).values())]
    if absent:
        raise DataError(f"dataset.table: {uri} has no '{absent[0]}' rows (a real table needs train, val and test)")
    groups = sorted({group for counts in info.group_counts.values() for group in counts})
    check_splits(info.group_counts, groups, f"dataset.table {uri}", None)
    try:
        problem = schema_problem(location)
    except (DataError, OSError, pa.ArrowException) as exc:
        problem = (str(exc).splitlines() or [type(exc).__name__])[0]
    if problem:
        raise DataError(f"dataset.table: {uri}: {problem}")
    return location


def real_location(config: ExperimentConfig, workspace: Workspace) -> Location:
    """Where the real table of ``config.dataset`` is (or will be): named by a hash of the section."""
    if config.dataset.table:
        return Location(config.dataset.table)
    # The built-in world's synthetic-renderer knobs left out (at their defaults): a sweep over
    # them shares one real table, and tables stored before keep their names.
    name = f"real-{config.dataset.name}-{config.real_data_only().digest('dataset')}"
    sources = dataset_of(config.dataset).sources_key(config.dataset)  # folder: its metadata file, edited: another table
    if sources:
        name += f"-{sources}"
    return workspace.data / name


def prepare_real(config: ExperimentConfig, workspace: Workspace) -> Location:
    if config.dataset.table:
        return finished_real_table(config.dataset.table, config.dataset.name)
    path = real_location(config, workspace)
    if not is_complete(path):
        print(f"[data] writing the real {config.dataset.name} table to {redact(str(path))}", flush=True)
        info = dataset_of(config.dataset).build_real_table(config.dataset, path)
        print(count_table(info), flush=True)
        return path
    # Its name covers the metadata file, not the images (folder): one edited since is refused, not reused stale.
    changed = changed_source(path, config.dataset.root)
    if changed is not None:
        image, gone = changed
        what = "was removed since the real table was written" if gone else "changed since the real table was written (size or modification time)"
        raise DataError(f"dataset.root: {config.dataset.root}: image {image} {what}; remove {path} or restore the image")
    return path


def held_apart_location(config: ExperimentConfig, workspace: Workspace) -> Location:
    """Where the images ``config.dataset`` sets apart for training a generator are (or will be)."""
    key = dataset_of(config.dataset).held_apart_key(config.dataset)
    return workspace.data / f"held-apart-{config.dataset.name}-{identity.key(key)}"


def prepare_held_apart(config: ExperimentConfig, workspace: Workspace) -> Location:
    """The held-apart table (written once): a generator's training images, never the benchmark's."""
    path = held_apart_location(config, workspace)
    if not is_complete(path):
        print(f"[data] writing the generator's held-apart {config.dataset.name} images to {redact(str(path))}", flush=True)
        info = dataset_of(config.dataset).held_apart_table(config.dataset, path)
        print(count_table(info), flush=True)
    return path


def planned_real_info(config: ExperimentConfig) -> TableInfo:
    """The real table's names and group counts without writing it (no Ray): the finished table's
    metadata when it is there, else the dataset's listing after the bias-ratio rule."""
    dataset = config.dataset
    if dataset.table is not None:  # checked as a run accepts it: a dry run refuses what the run would
        return read_info(finished_real_table(dataset.table, dataset.name))
    location = real_location(config, Workspace(Location(config.output_dir)))
    if is_complete(location):
        return read_info(location)
    reader = dataset_of(dataset)
    rows = reader.listing(dataset)
    class_names, bias_names = reader.names(dataset)
    return TableInfo(dataset.name, list(class_names), list(bias_names), "real", rows.num_rows, count_groups(rows))
