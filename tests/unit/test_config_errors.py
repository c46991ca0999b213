"""Bad config input refused in one line naming the field, file, line and column: non-finite
numbers, duplicate YAML keys, text that is not UTF-8, malformed YAML (files, overrides, prompt
templates)."""

from __future__ import annotations

import re

import pytest

from fake2real.config import build_config
from fake2real.errors import ConfigError
from fake2real.generate.prompts import load_template

TEMPLATE = "name: t\nclass_names: [a, b]\nbias_names: [c, d]\ntemplate: '{class} {bias}'\nclass_phrases: [[x], [y]]\nbias_phrases: [[u], [v]]\n"


def refused(call, message: str) -> None:
    """``call()`` raises a ConfigError whose whole message is ``message``, on one line."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$") as error:
        call()
    assert "\n" not in str(error.value)


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# --- 1. non-finite numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.real.lr=.inf", "config: train.real.lr: Input should be a finite number (got inf)"),
        ("train.real.lr=.nan", "config: train.real.lr: Input should be a finite number (got nan)"),
        ("train.real.lr=-.inf", "config: train.real.lr: Input should be a finite number (got -inf)"),
        ("train.real.lr=1e999", "config: train.real.lr: Input should be a finite number (got inf)"),  # overflows to inf
        ("train.real.lr=inf", "config: train.real.lr: Input should be a finite number (got 'inf')"),
        ("sweep.search.lr=[loguniform, 1e-4, .inf]", "config: sweep.search.lr.2: Input should be a finite number (got inf)"),
        ("generation.diffusers.guidance=.inf", "config: generation.diffusers.guidance: Input should be a finite number (got inf)"),
        ("dataset.bias_ratio=.nan", "config: dataset.bias_ratio: Input should be a finite number (got nan)"),
        ("sweep.bias_ratios=[0.9, .nan]", "config: sweep.bias_ratios.1: Input should be a finite number (got nan)"),
        ("sweep.cost.training_images_per_second=.inf", "config: sweep.cost.training_images_per_second: Input should be a finite number (got inf)"),
        ("train.cpus_per_worker=.inf", "config: train.cpus_per_worker: Input should be a finite number (got inf)"),
        # free-form values: method parameters and filter settings
        ("train.method_params={groupdro: {eta: .nan}}", "config: train.method_params.groupdro.eta: Input should be a finite number (got nan)"),
        ("generation.filters=[{name: grayscale, threshold: .inf}]", "config: generation.filters.0.threshold: Input should be a finite number (got inf)"),
    ],
)
def test_non_finite_override_is_refused(override, message):
    refused(lambda: build_config(overrides=[override]), message)


def test_non_finite_in_a_yaml_file_is_refused(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  real:\n    lr: .inf\n")
    refused(lambda: build_config(path), "config: train.real.lr: Input should be a finite number (got inf)")


def test_finite_numbers_still_pass():
    config = build_config(overrides=["train.real.lr=3e-4", "generation.diffusers.guidance=0", "sweep.search.lr=[uniform, 1e-5, 1.0]"])
    assert config.train.real.lr == pytest.approx(3e-4) and config.generation.diffusers.guidance == 0
    assert build_config(overrides=["dataset.bias_ratio=null", "dataset.name=folder", "dataset.root=/d"]).dataset.bias_ratio is None


# --- 2. duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\ntrain:\n  method: erm\n  real:\n    lr: 0.1\n  method: groupdro\n", "line 6: duplicate key 'train.method' (first at line 3)"),
        ("seed: 1\nname: x\nseed: 2\n", "line 3: duplicate key 'seed' (first at line 1)"),
        ("train:\n  real:\n    lr: 0.1\n    epochs: 2\n    lr: 0.2\n", "line 5: duplicate key 'train.real.lr' (first at line 3)"),
        ("generation:\n  filters:\n    - name: grayscale\n      name: other\n", "line 4: duplicate key 'generation.filters.0.name' (first at line 3)"),
        ("train: {method: erm,\n  method: jtt}\n", "line 2: duplicate key 'train.method' (first at line 1)"),
    ],
)
def test_duplicate_key_in_a_config_file(tmp_path, content, message):
    path = write(tmp_path, "dup.yaml", content)
    refused(lambda: build_config(path), f"config: {path}: {message}")


def test_merge_keys_are_not_duplicates(tmp_path):
    path = write(tmp_path, "merge.yaml", "train:\n  real: &stage\n    lr: 0.1\n    epochs: 2\n  synthetic:\n    <<: *stage\n    lr: 0.2\n")
    config = build_config(path)
    assert (config.train.synthetic.lr, config.train.synthetic.epochs, config.train.real.lr) == (0.2, 2, 0.1)


def test_duplicate_key_in_an_override():
    item = "train.method_params={groupdro: {eta: 0.1, eta: 0.2}}"
    refused(
        lambda: build_config(overrides=[item]),
        f"config: override '{item}': duplicate key 'train.method_params.groupdro.eta' at column 43 (first at column 33)",
    )


def test_duplicate_key_in_a_prompt_template(tmp_path):
    path = write(tmp_path, "t.yaml", TEMPLATE + "template: '{class}'\n")
    refused(lambda: load_template(str(path)), f"config: generation.prompts: {path}: line 7: duplicate key 'template' (first at line 4)")


# --- 3. not UTF-8, malformed YAML ----------------------------------------------------------------


def test_config_file_not_utf8(tmp_path):
    path = write(tmp_path, "latin1.yaml", "name: café\n".encode("latin-1"))
    refused(lambda: build_config(path), f"config: {path} is not UTF-8 text: byte 0xe9 at offset 9")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("train: {method: erm\n",
         "line 2, column 1: not valid YAML: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at line 1, column 8)"),
        ("a: [1, 2\n", "line 2, column 1: not valid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 1, column 4)"),
        ("train:\n\t- 1\n", "line 2, column 1: not valid YAML: found character '\\t' that cannot start any token (while scanning for the next token)"),
        ("name: 'x\n", "line 2, column 1: not valid YAML: found unexpected end of stream (while scanning a quoted scalar at line 1, column 7)"),
        ("name: a\x07b\n", "line 1, column 8: not valid YAML: unacceptable character #x0007: special characters are not allowed"),
    ],
)
def test_malformed_config_file(tmp_path, content, message):
    path = write(tmp_path, "bad.yaml", content)
    refused(lambda: build_config(path), f"config: {path}: {message}")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("sweep.seeds=[0,1", "not valid YAML at column 17: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at column 13)"),
        ("name='x", "not valid YAML at column 8: found unexpected end of stream (while scanning a quoted scalar at column 6)"),
        ("train.method_params={groupdro: {eta: 1}",
         "not valid YAML at column 40: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at column 21)"),
    ],
)
def test_malformed_override(item, message):
    refused(lambda: build_config(overrides=[item]), f"config: override '{item}': {message}")


def test_prompt_template_not_utf8(tmp_path):
    path = write(tmp_path, "t.yaml", TEMPLATE.replace("[[x], [y]]", "[[caf\xe9], [y]]").encode("latin-1"))
    refused(lambda: load_template(str(path)), f"config: generation.prompts: {path} is not UTF-8 text: byte 0xe9 at offset 94")


def test_malformed_prompt_template(tmp_path):
    path = write(tmp_path, "t.yaml", TEMPLATE.replace("[[u], [v]]", "[[u], [v]"))
    refused(
        lambda: load_template(str(path)),
        f"config: generation.prompts: {path}: line 7, column 1: not valid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence at line 6, column 15)",
    )


def test_builtin_templates_still_load():
    assert load_template("celeba").name and load_template("spuco_animals").class_names


@pytest.mark.parametrize("override, message", [
    ("train.method=ermm", "config: train.method: unknown method 'ermm' (known: dfr, erm, groupdro, jtt, resample, reweight)"),
    ("train.mixture=fr", "config: train.mixture: unknown mixture 'fr' (known: asb, ffr, "),
    ("train.method_params={grupdro: {eta: 0.1}}", "config: train.method_params: unknown method 'grupdro' (known: dfr, "),
    ("sweep.ablation_mixtures=[ffr_reversal]", "config: sweep.ablation_mixtures: unknown mixture 'ffr_reversal' (known: "),
    ("sweep.ablation_methods=[dfrr]", "config: sweep.ablation_methods: unknown method 'dfrr' (known: "),
    ("dataset.name=mnist",
     "config: dataset.name: unknown dataset 'mnist' (known: celeba, celebahq, fashion_mnist, folder, shapes, spuco_animals, utkface, waterbirds)"),
    ("generation.counts_from=usbb", "config: generation.counts_from: unknown count rule 'usbb' (known: usb, asb, ffr, biased)"),
])
def test_names_are_checked_where_they_are_declared(override, message):
    """A name is checked against its registry as the config is parsed, in one line naming the field."""
    with pytest.raises(ConfigError) as caught:
        build_config(overrides=[override])
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


# --- seeds: numpy refuses a negative one and Optuna one of 2³² or more, after training ---------


@pytest.mark.parametrize("override, message", [
    ("seed=-1", "config: seed: Input should be greater than or equal to 0 (got -1)"),
    ("sweep.seeds=[0, -1]", "config: sweep.seeds.1: Input should be greater than or equal to 0 (got -1)"),
    ("sweep.search.seed=-3", "config: sweep.search.seed: Input should be greater than or equal to 0 (got -3)"),
    ("sweep.search.seed=4294967296", "config: sweep.search.seed: Input should be less than 4294967296 (got 4294967296)"),
    ("generation.group_diffusion.training.seed=-1",
     "config: generation.group_diffusion.training.seed: Input should be greater than or equal to 0 (got -1)"),
])
def test_a_seed_numpy_or_optuna_would_refuse_is_refused_as_the_config_is_read(override, message):
    refused(lambda: build_config(overrides=[override]), message)


def test_a_seed_that_is_only_hashed_may_be_negative():
    # dataset.split_seed only ever goes through seeding.stable_seed (a hash): any integer works.
    assert build_config(overrides=["dataset.split_seed=-1"]).dataset.split_seed == -1
    assert build_config(overrides=["seed=4294967295", "sweep.seeds=[0, 4294967295]"]).seed == 4294967295


# --- method parameters: every entry of train.method_params, used by the job or not -------------


@pytest.mark.parametrize("overrides, message", [
    (["train.method=erm", "train.method_params={groupdro: {etaa: 1}}"],
     "config: train.method_params.groupdro.etaa: unknown parameter (known: eta, group_adjustment)"),
    (["train.method=erm", "train.method_params={groupdro: {eta: -1}}"], "config: train.method_params.groupdro.eta: -1 is outside [0.0001, 1.0]"),
    (["sweep.methods=[erm]", "train.method_params={erm: {}, jtt: {upweigth: 5}}"],
     "config: train.method_params.jtt.upweigth: unknown parameter (known: identification_epochs, upweight)"),
    (["train.method_params={groupdro: {eta: 0.01}}", "sweep.axes={train.method_params.groupdro.eta: [0.01, 2]}"],
     "config: sweep.axes: at eta=2: train.method_params.groupdro.eta: 2 is outside [0.0001, 1.0]"),
])
def test_every_method_parameter_is_checked_as_the_config_is_read(overrides, message):
    refused(lambda: build_config(overrides=overrides), message)


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("generation.output_size=4096", "config: generation.output_size: Input should be less than or equal to 1024 (got 4096)"),
    ("dataset.image_size=4096", "config: dataset.image_size: Input should be less than or equal to 1024 (got 4096)"),
])
def test_stored_image_sizes_are_capped_alike(override, message):
    refused(lambda: build_config(overrides=[override]), message)
    assert build_config(overrides=[f"{override.split('=')[0]}=1024"])


def test_a_config_path_that_is_a_directory_says_so(tmp_path):
    refused(lambda: build_config(tmp_path), f"config: {tmp_path} is a directory, not a config file")
    refused(lambda: build_config(tmp_path / "absent.yaml"), f"config: file not found: {tmp_path / 'absent.yaml'}")


# --- LP-FT and its search (issue 28) -------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("train.real.head_warmup_epochs=-1", "config: train.real.head_warmup_epochs: Input should be greater than or equal to 0 (got -1)"),
    ("train.real.head_warmup_epochs=1.5",
     "config: train.real.head_warmup_epochs: Input should be a valid integer, got a number with a fractional part (got 1.5)"),
    ("sweep.search.head_warmup=maybe", "config: sweep.search.head_warmup: Input should be a valid boolean, unable to interpret input (got 'maybe')"),
])
def test_lp_ft_settings_are_checked_as_the_config_is_read(override, message):
    with pytest.raises(ConfigError) as caught:
        build_config(overrides=[override])
    assert str(caught.value) == message
