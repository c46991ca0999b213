"""The post-hoc step refuses a checkpoint that holds no finished model (e.g. DFR's base)."""

from __future__ import annotations

import pytest

from fake2real.config import build_config
from fake2real.data.datasets import dataset_of
from fake2real.errors import DataError
from fake2real.presets import preset
from fake2real.train.posthoc import PosthocSpec, run_posthoc


def test_dfr_without_finished_base_model(tmp_path):
    config = build_config(base=preset("smoke"))
    dataset_of(config.dataset).build_real_table(config.dataset, tmp_path / "real")
    unfinished = tmp_path / "checkpoint"
    unfinished.mkdir()
    (unfinished / "resume_state.pt").write_bytes(b"")
    spec = PosthocSpec(str(unfinished), "small_cnn", str(tmp_path / "real"), None, "dfr", 0)
    with pytest.raises(DataError, match=r"dfr: no finished base model at .*checkpoint \(best_model.pt is missing\)"):
        run_posthoc(spec, str(tmp_path / "cache"))
