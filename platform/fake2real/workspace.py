"""Where a config's artifacts live, and the real table every experiment of a dataset shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fake2real.config import ExperimentConfig
from fake2real.data.datasets import build_real_table
from fake2real.data.ingest import count_table
from fake2real.data.table import check_writable, is_complete


@dataclass
class Workspace:
    root: Path

    @classmethod
    def create(cls, config: ExperimentConfig) -> "Workspace":
        return cls(check_writable(config.output_dir))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def runs(self) -> str:
        return str(self.root / "runs")


def prepare_real(config: ExperimentConfig, workspace: Workspace) -> Path:
    path = workspace.data / f"real-{config.dataset.name}-{config.digest('dataset')}"
    if not is_complete(path):
        workspace.data.mkdir(parents=True, exist_ok=True)
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
