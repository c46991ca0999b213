"""A diffusers folder whose model_index.json lists components it lacks is refused before any Ray
work, with one line naming the component (a tiny pipeline saved by the test, no downloads)."""

from __future__ import annotations

import shutil

import pytest

from fake2real.errors import ConfigError
from fake2real.prepare.synthetic import check_generation
from tiny_sd import build_tiny_sd


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny")


@pytest.fixture
def config(make_config):
    """``config(model)``: the diffusers backend on the pipeline folder ``model``, CelebA's prompts."""
    return lambda model: make_config(generation={"backend": "diffusers", "diffusers": {"model": str(model)}, "prompts": "celeba"})


def test_a_whole_pipeline_passes(tiny, config):
    check_generation(config(tiny))


@pytest.mark.parametrize(
    "remove, message",
    [
        ("unet/diffusion_pytorch_model.safetensors", "unet has a config.json but no weights (*.safetensors or *.bin)"),
        ("text_encoder/model.safetensors", "text_encoder has a config.json but no weights"),
        ("vae", "lists the component 'vae' (AutoencoderKL) but has no vae/ folder"),
    ],
)
def test_a_pipeline_with_a_missing_part_is_refused_in_one_line(tiny, tmp_path, config, remove, message):
    copy = shutil.copytree(tiny, tmp_path / "copy")
    target = copy / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ConfigError) as error:
        check_generation(config(copy))
    assert "\n" not in str(error.value) and str(error.value).startswith(f"config: generation.diffusers.model: {copy}")
    assert message in str(error.value)
