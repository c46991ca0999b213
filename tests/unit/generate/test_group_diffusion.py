"""The group-conditioned diffusion backend: its generator folder, its checks, its pool identity and
its images (a tiny UNet with random weights, saved and loaded as a diffusers folder)."""

from __future__ import annotations

import numpy as np
import pytest

import native_fixtures
from fake2real.config import build_config
from fake2real.data.datasets import fashion_mnist
from fake2real.errors import ConfigError, DataError
from fake2real.generate.backends import backend_of, make_generator, settings_of
from fake2real.generate.group_pipeline import build_unet, save_pipeline
from fake2real.prepare.generators import generator_job
from fake2real.prepare.synthetic import synthetic_pool
from fake2real.prepare.workspace import Workspace

BACKEND = ["generation.backend=group_diffusion", "train.model=efficientnet_lite0", "train.pretrained=imagenet"]


@pytest.fixture
def root(tmp_path):
    fashion_mnist.read_native.cache_clear()
    yield str(native_fixtures.fashion_mnist(tmp_path / "fashion"))
    fashion_mnist.read_native.cache_clear()


@pytest.fixture
def fashion_config(make_config, root):
    """``fashion_config(*overrides)``: the native Fashion-MNIST fixture with the group-conditioned backend."""
    return lambda *overrides: make_config("dataset.name=fashion_mnist", f"dataset.root={root}", "dataset.fashion_mnist.val_per_group=5",
                                          "dataset.fashion_mnist.test_per_group=8", *BACKEND, *overrides)


def _folder(path, class_names=("pullover", "coat"), bias_names=("warm", "cool")):
    import torch

    torch.manual_seed(0)
    unet = build_unet(16, len(class_names) * len(bias_names), [8, 16], 1, False)
    save_pipeline(unet, path, list(class_names), list(bias_names))
    return str(path)


def test_a_given_folder_makes_each_image_from_its_own_seed(tmp_path, fashion_config):
    folder = _folder(tmp_path / "gen")
    config = fashion_config(f"generation.group_diffusion.model={folder}", "generation.group_diffusion.steps=3")
    backend_of(config).check(settings_of(config), config.dataset)
    generator = make_generator("group_diffusion", backend_of(config).identity(settings_of(config), config.dataset))
    y, b, seeds = np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([7, 8, 9])
    together = generator.generate(y, b, ["p"] * 3, seeds)
    alone = generator.generate(y[1:2], b[1:2], ["p"], seeds[1:2])
    assert together[0].shape == (16, 16, 3) and together[0].dtype == np.uint8
    assert np.array_equal(together[1], alone[0])  # the same row, whatever its batch
    assert not np.array_equal(together[1], together[2])
    assert generator.steps == 3 and generator.generator.startswith("group_diffusion:")


def test_a_group_it_was_not_trained_on_is_refused(tmp_path, fashion_config):
    folder = _folder(tmp_path / "gen")
    config = fashion_config(f"generation.group_diffusion.model={folder}")
    generator = make_generator("group_diffusion", backend_of(config).identity(settings_of(config), config.dataset))
    with pytest.raises(DataError, match=r"asked for group y2_b0; the generator was trained for 2 classes × 2 biases \(pullover, coat × warm, cool\)"):
        generator.generate(np.array([2]), np.array([0]), ["p"], np.array([1]))


def test_a_folder_trained_for_other_groups_names_both(tmp_path, fashion_config):
    folder = _folder(tmp_path / "gen", class_names=("shirt", "coat"))
    config = fashion_config(f"generation.group_diffusion.model={folder}")
    with pytest.raises(ConfigError, match=r"^config: generation.group_diffusion.model: .* was trained for classes \['shirt', 'coat'\] × "
                                          r"biases \['warm', 'cool'\], not dataset fashion_mnist's \['pullover', 'coat'\] × \['warm', 'cool'\]$"):
        backend_of(config).check(settings_of(config), config.dataset)


def test_missing_or_unfinished_folders_are_one_line(tmp_path, fashion_config):
    config = fashion_config(f"generation.group_diffusion.model={tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError, match=r"^config: generation.group_diffusion.model: no generator at .*nowhere"):
        backend_of(config).check(settings_of(config), config.dataset)
    folder = _folder(tmp_path / "gen")
    (tmp_path / "gen" / "groups.json").unlink()
    with pytest.raises(ConfigError, match=r"is not a generator the platform trained \(no groups.json\)"):
        config = fashion_config(f"generation.group_diffusion.model={folder}")
        backend_of(config).check(settings_of(config), config.dataset)


def test_a_dataset_without_held_apart_images_needs_a_folder():
    config = build_config(overrides=["generation.backend=group_diffusion"])  # the built-in shapes world
    with pytest.raises(ConfigError, match=r"^config: generation.group_diffusion.model is required for dataset 'shapes'"):
        backend_of(config).check(settings_of(config), config.dataset)


def test_the_pool_names_the_generator_by_its_key_not_its_place(tmp_path, fashion_config):
    base = fashion_config()
    elsewhere = fashion_config(f"output_dir={tmp_path / 'other'}")
    pool = lambda config: synthetic_pool(config, Workspace.create(config)).id  # noqa: E731
    assert pool(base) == pool(elsewhere)
    # What the generator computes is its key; how it runs is not.
    assert pool(fashion_config("generation.group_diffusion.training.num_workers=2",
                               "generation.group_diffusion.training.checkpoint_every=7")) == pool(base)
    assert pool(fashion_config("generation.group_diffusion.training.steps=10")) != pool(base)
    assert pool(fashion_config("generation.group_diffusion.steps=10")) != pool(base)
    # The held-apart images do not depend on the bias ratio: one generator for every ratio.
    job = generator_job
    assert job(base).spec.key() == job(fashion_config("dataset.bias_ratio=0.999")).spec.key()


def test_a_group_conditioned_generator_cannot_leave_the_bias_out(fashion_config):
    from fake2real.train.mixtures import get_mixture

    config = fashion_config()
    with pytest.raises(ConfigError, match=r"^config: mixture 'ffr_unbalanced' needs images made without bias words; "
                                          r"generation.backend=group_diffusion makes every image for a \(class, bias\) group$"):
        synthetic_pool(config, Workspace.create(config), get_mixture("ffr_unbalanced"))


def test_training_settings_are_checked_as_the_config_is_read():
    with pytest.raises(ConfigError, match=r"^config: generation.group_diffusion.training.channels: 1 to 5 levels, each a multiple of 8"):
        build_config(overrides=["generation.group_diffusion.training.channels=[16,20]"])
    with pytest.raises(ConfigError, match=r"generation.group_diffusion.training.ema_decay: Input should be less than 1"):
        build_config(overrides=["generation.group_diffusion.training.ema_decay=1.0"])
