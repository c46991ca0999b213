"""docs/design.md §3, checked by doing it: a method is added by one new file in train/methods/, a
mixture by one entry in MIXTURES, a dataset (with a field of its own) and a generator backend each
by one new file and one registry line, and nothing else changes. Each addition is made in a copy
of the package, and a fresh interpreter reads a config that names it, plans with it and (for the
method) computes its loss, (for the backend) makes images."""

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


STRIPED = '''"""A built-in world with a setting of its own: the shapes world, striped."""

from __future__ import annotations

from pydantic import Field

from fake2real.data.datasets.base import DatasetSettings
from fake2real.data.datasets.shapes import Shapes


class StripedWorld(DatasetSettings):
    stripes: int = Field(3, ge=1, le=16)


class Striped(Shapes):
    name = "striped"
    Settings = StripedWorld
    section_in_every_key = False
'''

SOLID = '''"""A generator of flat grey images, one level for all."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from fake2real.generate.base import GeneratorBackend
from fake2real.section_base import _Section


class SolidSettings(_Section):
    level: int = Field(128, ge=0, le=255)


class SolidBackend(GeneratorBackend):
    name = "solid"
    Settings = SolidSettings

    @classmethod
    def identity(cls, settings, dataset) -> dict:
        return {"level": settings.level, "size": dataset.shapes.image_size}

    def __init__(self, settings: dict):
        self.level, self.size, self.generator = settings["level"], settings["size"], "solid"

    def generate(self, y, b, prompts, seeds):
        return [np.full((self.size, self.size, 3), self.level, np.uint8) for _ in seeds]
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


def register(package: Path, registry: str, anchor: str, entry: str) -> None:
    path = package / registry
    text = path.read_text()
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + entry, 1))


def test_a_dataset_is_one_new_file_and_one_entry(tmp_path):
    def add(package: Path) -> None:
        (package / "data" / "datasets" / "striped.py").write_text(STRIPED)
        register(package, "data/datasets/__init__.py", "from fake2real.data.datasets.shapes import Shapes\n",
                 "from fake2real.data.datasets.striped import Striped\n")
        register(package, "data/datasets/__init__.py", "Waterbirds, Folder", ", Striped")

    root = copy_with(tmp_path, add)
    assert changed_files(root) == ["data/datasets/__init__.py", "data/datasets/striped.py"]
    done = run(root, f"""
from fake2real.config import build_config
from fake2real.data.datasets import logged_params
from fake2real.entrypoints import sweep_dry_run
from fake2real.errors import ConfigError
config = build_config(overrides=["output_dir={tmp_path / 'out'}", "dataset.name=striped", "dataset.striped.stripes=5",
                                 "sweep.mixtures=[none]", "sweep.methods=[erm]", "generation.test_images_per_group=0", "train.num_workers=1"])
params = logged_params(config.dataset)
print(params["striped"], "shapes" in params)
print([line for line in sweep_dry_run(config).splitlines() if line.startswith("  r=")][0].split(" (")[0].rsplit("/", 1)[-1][:13])
print(build_config().digest())
for bad in (["dataset.striped.stripes=0"], ["dataset.name=stripy"]):
    try:
        build_config(overrides=bad)
    except ConfigError as exc:
        print(str(exc).split(" (known")[0])
""", tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "{'stripes': 5} False"  # its own section logged; the world it does not read left out
    assert lines[1] == "real-striped-"  # planned as its own real table
    from fake2real.config import build_config

    assert lines[2] == build_config().digest()  # a new dataset's section joins a job's key only when set
    assert lines[3] == "config: dataset.striped.stripes: Input should be greater than or equal to 1 (got 0)"
    assert lines[4] == "config: dataset.name: unknown dataset 'stripy'"


def test_a_backend_is_one_new_file_and_one_entry(tmp_path):
    def add(package: Path) -> None:
        (package / "generate" / "solid.py").write_text(SOLID)
        register(package, "generate/backends.py", "from fake2real.generate.procedural import ProceduralBackend\n",
                 "from fake2real.generate.solid import SolidBackend\n")
        register(package, "generate/backends.py", "GroupDiffusionBackend, FolderImport", ", SolidBackend")

    root = copy_with(tmp_path, add)
    assert changed_files(root) == ["generate/backends.py", "generate/solid.py"]
    done = run(root, f"""
from fake2real.config import build_config
from fake2real.entrypoints import generate_dry_run
from fake2real.errors import ConfigError
from fake2real.generate.backends import make_generator
from fake2real.prepare.synthetic import synthetic_draw
from fake2real.prepare.workspace import Workspace
config = build_config(overrides=["output_dir={tmp_path / 'out'}", "generation.backend=solid", "generation.solid.level=7",
                                 "generation.images_per_group=3"])
print(generate_dry_run(config).splitlines()[0].split(": ", 1)[1])
pool = synthetic_draw(config, Workspace.create(config)).pool
images = make_generator("solid", pool.spec.settings).generate([0], [1], ["p"], [5])
print(pool.identity["backend_kwargs"], images[0].shape, int(images[0].max()))
print(build_config().digest())
try:
    build_config(overrides=["generation.backend=solid", "generation.solid.level=300"])
except ConfigError as exc:
    print(exc)
""", tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "12 images"  # 3 per group of the built-in world's 4
    assert lines[1] == "{'level': 7, 'size': 32} (32, 32, 3) 7"
    from fake2real.config import build_config

    assert lines[2] == build_config().digest()  # a new backend's section joins a job's key only when set
    assert lines[3] == "config: generation.solid.level: Input should be less than or equal to 255 (got 300)"
