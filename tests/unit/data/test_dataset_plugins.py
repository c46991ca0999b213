"""Datasets are plugins (docs/design.md §3): each is one class in data/datasets/ that owns what
differs between datasets, so no other module names a dataset, and a shared field that only some
datasets read is refused on the others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fake2real.config import build_config
from fake2real.data.datasets import DATASETS, OWN_FIELDS, logged_params
from fake2real.data.datasets.base import Dataset
from fake2real.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[3] / "platform" / "fake2real"
# The procedural backend is the built-in world's synthetic renderer: it imports that world's
# render function (its pools' identity holds the world, never a dataset name).
RENDERER = {PACKAGE / "generate" / "procedural.py": "fake2real.data.datasets.shapes"}


def _named(path: Path) -> list[str]:
    """Where a module compares a dataset's name, reads a dataset's own section, or imports a dataset's module."""
    sections = {name for name, dataset in DATASETS.items() if dataset.Settings}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for element in (e for o in operands for e in (o.elts if isinstance(o, (ast.Tuple, ast.List, ast.Set)) else [o])):
                if isinstance(element, ast.Constant) and element.value in DATASETS:
                    found.append(f"{node.lineno}: compares dataset name '{element.value}'")
        elif isinstance(node, ast.Attribute) and node.attr in sections and isinstance(node.value, ast.Attribute) and node.value.attr == "dataset":
            found.append(f"{node.lineno}: reads dataset.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fake2real.data.datasets."):
            if node.module not in ("fake2real.data.datasets.base",) and RENDERER.get(path) != node.module:
                found.append(f"{node.lineno}: imports {node.module}")
    return found


def test_no_module_outside_the_datasets_folder_names_a_dataset():
    own = PACKAGE / "data" / "datasets"
    found = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py")) if own not in path.parents
             for line in _named(path)]
    assert not found, "\n".join(found)


def test_the_check_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('if config.dataset.name == "folder":\n    x = config.dataset.shapes.image_size\n'
                   'from fake2real.data.datasets.celeba import CelebA\nok = name in ("celeba", "utkface")\n')
    assert sorted(_named(bad)) == ["1: compares dataset name 'folder'", "2: reads dataset.shapes",
                           "3: imports fake2real.data.datasets.celeba", "4: compares dataset name 'celeba'",
                           "4: compares dataset name 'utkface'"]


def test_every_dataset_is_a_plugin_with_its_section_in_the_config():
    config = build_config()
    for name, dataset in DATASETS.items():
        assert issubclass(dataset, Dataset) and dataset.name == name
        if dataset.Settings:
            assert getattr(config.dataset, name) == dataset.Settings()


@pytest.mark.parametrize(("overrides", "message"), [
    (["dataset.class_attribute=Young"],
     "config: dataset.class_attribute is for datasets 'celeba', 'celebahq' only (dataset.name is 'shapes')"),
    (["dataset.name=utkface", "dataset.root=/u", "dataset.bias_attribute=Young"],
     "config: dataset.bias_attribute is for datasets 'celeba', 'celebahq' only (dataset.name is 'utkface')"),
    (["dataset.name=waterbirds", "dataset.root=/w", "dataset.metadata=m.csv"],
     "config: dataset.metadata is for dataset 'folder' only (dataset.name is 'waterbirds')"),
    (["dataset.name=celeba"], "config: dataset.root is required for dataset 'celeba' (the folder of its native layout)"),
    (["dataset.bias_ratio=null"], "config: dataset.bias_ratio is required for the built-in shapes world"),
    (["dataset.name=folder", "dataset.root=/f", "dataset.class_names=[a]"], "config: dataset.class_names: needs at least 2 distinct names, got ['a']"),
])
def test_a_field_of_another_dataset_or_a_missing_one_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        build_config(overrides=overrides)
    assert str(error.value) == message


def test_own_fields_are_those_some_datasets_read_and_each_is_logged_only_where_read():
    assert OWN_FIELDS == {"class_attribute": ["celeba", "celebahq"], "bias_attribute": ["celeba", "celebahq"],
                          "metadata": ["folder"], "class_names": ["folder"], "bias_names": ["folder"]}
    celeba = logged_params(build_config(overrides=["dataset.name=celeba", "dataset.root=/c", "dataset.class_attribute=Young",
                                                   "dataset.majority_bias={0: 1, 1: 0}"]).dataset)
    assert celeba["class_attribute"] == "Young" and "shapes" not in celeba and "fashion_mnist" not in celeba
    fashion = logged_params(build_config(overrides=["dataset.name=fashion_mnist"]).dataset)
    assert "fashion_mnist" in fashion and "image_size" not in fashion and "class_attribute" not in fashion
