"""Where a config's artifacts live, and the real table every experiment of a dataset shares.

``output_dir`` is a local folder or a URI (``s3://bucket/prefix``, ``gs://…``, ``file://…``):
tables (``data/``), Ray Train runs and checkpoints (``runs/``) and sweep results (``results/``)
are written through pyarrow filesystems. MLflow artifacts stay on the driver's disk when the
workspace is remote (``<cwd>/mlartifacts``), unless ``tracking.uri`` names a tracking server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fake2real.config import ExperimentConfig
from fake2real.data.datasets import build_real_table
from fake2real.data.ingest import count_table
from fake2real.data.storage import Location
from fake2real.data.table import check_writable, is_complete


@dataclass
class Workspace:
    root: Location  # ``root / "name"`` joins for local folders and URIs alike; ``str(root)`` is its path or URI

    @classmethod
    def create(cls, config: ExperimentConfig) -> "Workspace":
        return cls(check_writable(config.output_dir))

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


def prepare_real(config: ExperimentConfig, workspace: Workspace) -> Location:
    path = workspace.data / f"real-{config.dataset.name}-{config.digest('dataset')}"
    if not is_complete(path):
        print(f"[data] writing the real {config.dataset.name} table to {path}", flush=True)
        info = build_real_table(config.dataset, path)
        print(count_table(info), flush=True)
    return path


def run_ingest(config: ExperimentConfig) -> str:
    """``jobs/ingest.py``: the real table of ``config.dataset`` (built once, then reused)."""
    from fake2real.data.table import read_info

    # prepare_real checks the listing (files, groups) before it starts any Ray work.
    path = prepare_real(config, Workspace.create(config))
    info = read_info(path)
    return f"real table: {path} ({info.num_rows} images)\n{count_table(info)}"
