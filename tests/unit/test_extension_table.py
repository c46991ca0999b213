"""docs/design.md §3, checked by doing it: a method is added by one new file in train/methods/, a
mixture by one entry in MIXTURES, and nothing else changes. Each addition is made in a copy of the
package, and a fresh interpreter reads a config that names it, plans a sweep with it and (for the
method) computes its loss."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "platform" / "fake2real"

FOCAL = '''"""Focal loss (Lin et al. 2017): easy samples weigh less, by (1 - p)^gamma."""

from __future__ import annotations

from fake2real.lazy import lazy_module
from fake2real.train.methods.base import Hyperparameter, Method, register

torch = lazy_module("torch")


@register
class Focal(Method):
    name = "focal"
    hyperparameters = (Hyperparameter("gamma", 2.0, ("uniform", 0.0, 5.0)),)

    def loss(self, batch, reducer):
        p = torch.exp(-batch.per_sample_loss)
        return ((1 - p) ** self.params["gamma"] * batch.per_sample_loss).mean()
'''


def copy_with(tmp_path: Path, edit) -> Path:
    """A copy of the package (no caches) with ``edit(copy)`` applied; returns its source root."""
    root = tmp_path / "src"
    shutil.copytree(PACKAGE, root / "fake2real", ignore=shutil.ignore_patterns("__pycache__"))
    edit(root / "fake2real")
    return root


def run(root: Path, code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env_path = f"import sys\nsys.path.insert(0, {str(root)!r})\n"
    return subprocess.run([sys.executable, "-c", env_path + code], capture_output=True, text=True, timeout=180, cwd=tmp_path)


def changed_files(root: Path) -> list[str]:
    """Files of the copy that differ from the package (or are new)."""
    changed = []
    for path in sorted((root / "fake2real").rglob("*.py")):
        original = PACKAGE / path.relative_to(root / "fake2real")
        if not original.is_file() or original.read_bytes() != path.read_bytes():
            changed.append(str(path.relative_to(root / "fake2real")))
    return changed


def test_a_method_is_one_new_file(tmp_path):
    root = copy_with(tmp_path, lambda package: (package / "train" / "methods" / "focal.py").write_text(FOCAL))
    assert changed_files(root) == ["train/methods/focal.py"]
    done = run(root, f"""
import torch
from fake2real.config import build_config
from fake2real.errors import ConfigError
from fake2real.entrypoints import sweep_dry_run
from fake2real.run.search import search_space
from fake2real.train.methods import Batch, Reducer, get_method
config = build_config(overrides=["output_dir={tmp_path / 'out'}", "sweep.methods=[erm, focal]", "train.method=focal",
                                 "train.method_params.focal.gamma=1.5", "sweep.search.num_samples=2", "train.num_workers=1"])
print(sorted(k for k in search_space(config)[0] if k.startswith("method.")))
print([line for line in sweep_dry_run(config).splitlines() if line.startswith("experiments:")][0])
method = get_method("focal")({{"gamma": 1.5}}, [0, 1], 2)
loss = torch.tensor([0.1, 2.0])
print(round(float(method.loss(Batch(loss, None, None, None, None), Reducer())), 4))
try:
    build_config(overrides=["train.method_params.focal.gamma=9"])
except ConfigError as exc:
    print(exc)
""", tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['method.gamma']"
    assert lines[1].startswith("experiments: 4 (")  # none/ffr × erm/focal, one seed
    expected = sum((1 - __import__("math").exp(-x)) ** 1.5 * x for x in (0.1, 2.0)) / 2
    assert float(lines[2]) == round(expected, 4)
    assert lines[3] == "config: train.method_params.focal.gamma: 9 is outside [0.0, 5.0]"


def test_a_mixture_is_one_entry(tmp_path):
    entry = '        Mixture("ffr_twice", (_SYNTHETIC_ERM, _REAL_AFTER_SYNTHETIC, StagePlan("stage3_real", "real", None, True)), count_rule="ffr"),\n'

    def add(package: Path) -> None:
        path = package / "train" / "mixtures.py"
        text = path.read_text()
        anchor = '        Mixture("ffr_biased", _FFR_STAGES, count_rule="biased"),\n'
        assert anchor in text
        path.write_text(text.replace(anchor, anchor + entry))

    root = copy_with(tmp_path, add)
    assert changed_files(root) == ["train/mixtures.py"]
    done = run(root, f"""
from fake2real.config import build_config
from fake2real.entrypoints import sweep_dry_run
config = build_config(overrides=["output_dir={tmp_path / 'out'}", "sweep.mixtures=[none, ffr_twice]", "sweep.methods=[erm]",
                                 "train.num_workers=1"])
print([line for line in sweep_dry_run(config).splitlines() if line.startswith("stages to train")][0])
""", tmp_path)
    assert done.returncode == 0, done.stderr
    # none's real stage, and ffr_twice's three (its stage 1 is FFR's, by name and hash)
    assert done.stdout.strip().startswith("stages to train after sharing: 4 (1 real, 1 stage1_synthetic, 1 stage2_real, 1 stage3_real)")
