"""Typed config: defaults, overrides, one-line errors, shipped YAML files and presets, digest, CLI."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from fake2real import cli
from fake2real.config import ExperimentConfig, build_config, merge, parse_overrides
from fake2real.errors import ConfigError
from fake2real.presets import PRESETS, preset

REPO = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((REPO / "configs").rglob("*.yaml")) + sorted((REPO / "configs").rglob("*.yml"))


def test_defaults_validate():
    config = build_config()
    assert isinstance(config, ExperimentConfig)
    assert config.dataset.name == "shapes"
    assert config.dataset.bias_ratio == 0.99
    assert config.train.mixture == "ffr" and config.train.method == "erm"
    assert config.sweep.seeds == [0]
    assert config == ExperimentConfig()


def test_overrides_parse_typed_values():
    config = build_config(
        overrides=[
            "train.real.lr=0.01",
            "sweep.seeds=[0,1,2]",
            "dataset.bias_ratio=0.95",
            "train.use_gpu=true",
            "train.real.epochs=3",
            "train.method_params={groupdro: {eta: 0.1}}",
            "tracking.uri=sqlite:///x.db",
            "sweep.methods=[erm]",
        ]
    )
    assert config.train.real.lr == 0.01
    assert config.sweep.seeds == [0, 1, 2]
    assert config.dataset.bias_ratio == 0.95
    assert config.train.use_gpu is True
    assert config.train.real.epochs == 3
    assert config.train.method_params == {"groupdro": {"eta": 0.1}}
    assert config.tracking.uri == "sqlite:///x.db"
    assert config.sweep.methods == ["erm"]
    # untouched siblings keep their defaults
    assert config.train.real.batch_size == 128
    assert config.train.synthetic.lr == 0.001


def test_exponent_notation_on_typed_field():
    assert build_config(overrides=["train.real.lr=3e-4"]).train.real.lr == pytest.approx(0.0003)


def test_parse_overrides_nested():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x", "e="]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": ""}


def test_overrides_as_dict():
    assert build_config(overrides={"train": {"real": {"lr": 0.5}}}).train.real.lr == 0.5


def test_merge_is_deep_and_pure():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    out = merge(base, {"a": {"b": 9}, "e": 4})
    assert out == {"a": {"b": 9, "c": 2}, "d": 3, "e": 4}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}


@pytest.mark.parametrize(
    ("override", "dotted"),
    [("train.lrr=1", "train.lrr"), ("dataset.shapes.colour=1", "dataset.shapes.colour"), ("nope=1", "nope")],
)
def test_unknown_key_names_dotted_path(override, dotted):
    with pytest.raises(ConfigError) as excinfo:
        build_config(overrides=[override])
    message = str(excinfo.value)
    assert f"unknown key '{dotted}'" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["1.0", "0.4", "1.5"])
def test_bias_ratio_out_of_range(value):
    with pytest.raises(ConfigError, match=r"config: dataset\.bias_ratio: "):
        build_config(overrides=[f"dataset.bias_ratio={value}"])


def test_wrong_type_names_field():
    with pytest.raises(ConfigError, match=r"train\.real\.lr: .*'fast'"):
        build_config(overrides=["train.real.lr=fast"])
    with pytest.raises(ConfigError, match=r"train\.model"):
        build_config(overrides=["train.model=vgg"])


@pytest.mark.parametrize("override", ["x", "=1", "a..b=1", ".a=1", "a.=1"])
def test_malformed_override(override):
    with pytest.raises(ConfigError, match="not of the form key.path=value"):
        build_config(overrides=[override])


def test_conflicting_overrides():
    with pytest.raises(ConfigError, match="conflicts"):
        build_config(overrides=["train=1", "train.real.lr=2"])


@pytest.mark.parametrize("field", ["mixtures", "methods", "seeds"])
def test_empty_sweep_list(field):
    with pytest.raises(ConfigError, match=rf"sweep\.{field} must list at least one entry"):
        build_config(overrides=[f"sweep.{field}=[]"])


def test_yaml_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        build_config(path)


def test_yaml_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        build_config(tmp_path / "absent.yaml")


def test_yaml_invalid(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(path)


def test_yaml_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert build_config(path) == ExperimentConfig()


def test_yaml_unknown_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("train:\n  real:\n    lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train\.real\.lrr'"):
        build_config(path)


def test_precedence_preset_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: from-yaml\ntrain:\n  real:\n    lr: 0.2\n")
    config = build_config(path, ["train.real.lr=0.3"], base=preset("smoke"))
    assert config.name == "from-yaml"  # YAML over preset
    assert config.train.real.lr == 0.3  # override over YAML
    assert config.train.real.epochs == 1  # preset over defaults
    assert config.dataset.bias_ratio == 0.9


def test_shipped_config_files_exist():
    assert CONFIG_FILES, f"no YAML config in {REPO / 'configs'}: the README's configs/shapes.yaml is missing"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_shipped_config_file_validates(path):
    from fake2real.train.methods import get_method, resolve_params
    from fake2real.train.mixtures import get_mixture

    from fake2real.prepare.synthetic import needs_generation

    config = build_config(path)
    # The names the sweep would run must exist, and their method params must resolve.
    mixtures = config.sweep.mixtures + config.sweep.ablation_mixtures + [config.train.mixture]
    for name in mixtures:
        get_mixture(name)
    for name in config.sweep.methods + config.sweep.ablation_methods + [config.train.method]:
        resolve_params(get_method(name), config.train.method_params.get(name, {}))
    # A real dataset's synthetic images (training or the held-out synthetic test set) come from
    # Stable Diffusion, the config naming the model path the user fills in, or from a generator the
    # platform trains on the dataset's held-apart images (the offline benchmark).
    if config.dataset.name != "shapes" and needs_generation(config, mixtures):
        if config.generation.backend == "group_diffusion":
            from fake2real.data.datasets import get_dataset

            assert get_dataset(config.dataset.name).held_apart_key(config.dataset) is not None
        else:
            assert config.generation.backend == "diffusers" and config.generation.diffusers.model
    for name in config.train.method_params:
        get_method(name)
    if config.generation.prompts:
        from fake2real.generate.prompts import load_template

        load_template(config.generation.prompts)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate(name):
    from fake2real.train.methods import get_method, resolve_params
    from fake2real.train.mixtures import get_mixture

    before = copy.deepcopy(PRESETS)
    config = build_config(overrides=["train.real.lr=0.5"], base=preset(name))
    assert config.name == PRESETS[name]["name"]
    assert config.train.real.lr == 0.5
    assert PRESETS == before  # building a config does not mutate the preset
    for mixture in config.sweep.mixtures:
        get_mixture(mixture)
    for method in config.sweep.methods:
        resolve_params(get_method(method), config.train.method_params.get(method, {}))


def test_smoke_preset_values():
    config = build_config(base=preset("smoke"))
    assert config.dataset.shapes.train_per_group == 40
    assert config.train.real.epochs == 1
    assert config.sweep.mixtures == ["ffr"]


def test_preset_lookup():
    assert preset(None) == {}
    with pytest.raises(ConfigError, match=r"unknown preset 'nope' \(known: paper, quick, smoke\)"):
        preset("nope")


def test_digest_stable_and_sensitive():
    a, b = build_config(), build_config()
    assert a.digest() == b.digest()
    assert len(a.digest()) == 16
    assert build_config(overrides=["seed=1"]).digest() != a.digest()
    lr = build_config(overrides=["train.real.lr=0.5"])
    assert lr.digest() != a.digest()
    # Section digests: only the named sections count.
    assert lr.digest("dataset") == a.digest("dataset")
    assert lr.digest("train") != a.digest("train")
    assert lr.digest("train.synthetic") == a.digest("train.synthetic")
    assert build_config(overrides=["dataset.bias_ratio=0.95"]).digest("dataset") != a.digest("dataset")
    assert a.digest("dataset") != a.digest()


def test_digest_stable_across_processes():
    code = "from fake2real.config import build_config; print(build_config(overrides=['seed=3']).digest('dataset', 'train'))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={"PYTHONPATH": str(REPO / "platform"), "PYTHONHASHSEED": "123"},
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == build_config(overrides=["seed=3"]).digest("dataset", "train")


def test_cli_parse_and_load():
    args = cli.parse("test", ["--preset", "smoke", "train.real.lr=0.25", "sweep.seeds=[4]"])
    config = cli.load(args)
    assert config.name == "smoke"
    assert config.train.real.lr == 0.25
    assert config.sweep.seeds == [4]


def test_cli_main_turns_known_errors_into_exit_2(capsys):
    def fail():
        raise ConfigError("config: unknown key 'train.lrr'")

    with pytest.raises(SystemExit) as excinfo:
        cli.main(fail)
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == "error: config: unknown key 'train.lrr'\n"


def test_cli_main_runs_function():
    calls = []
    cli.main(lambda: calls.append(1))
    assert calls == [1]


def test_how_a_job_runs_is_not_its_identity():
    a = build_config()
    # Pinned: a job's key changes only when what it computes changes. Re-pinned when the
    # reference's subsampling rule (ceil, opposite majorities: dataset.majority_bias) replaced
    # ours: tables and stages stored under the old rule must not be reused.
    assert (a.digest(), a.digest("dataset", "train", "seed")) == ("26a9977423c148e1", "228193d2cec30992")
    how = build_config(overrides=["train.loader.mode=stream", "train.compile=true", "train.max_failures=3", "train.checkpoints_to_keep=2"])
    assert how.digest() == a.digest()
    assert build_config(overrides=["train.real.lr_schedule=cosine"]).digest("train") != a.digest("train")


def test_stage_key_is_pinned_and_sees_the_schedule():
    from fake2real.train.spec import StageSpec

    def spec(**hparams):
        return StageSpec("real", ("t",), "t", "erm", {}, "small_cnn", {**build_config().train.real.model_dump(), **hparams}, 0)

    assert spec().key() == "bebd21aef457ed27"
    assert spec(lr_schedule="cosine").key() != spec().key()
    assert spec(freeze_bn=True).key() != spec().key()
    keep_start = StageSpec("real", ("t",), "t", "erm", {}, "small_cnn", build_config().train.real.model_dump(), 0, keep_start=True)
    assert keep_start.key() != spec().key()


def test_global_batch_must_divide_over_the_workers():
    with pytest.raises(ConfigError, match=r"^config: train.real.batch_size \(100\) must be a multiple of train.num_workers \(3\)"):
        build_config(overrides=["train.num_workers=3", "train.real.batch_size=100", "train.synthetic.batch_size=99"])
    assert build_config(overrides=["train.num_workers=4"]).train.real.batch_size == 128


def test_loader_settings_are_checked():
    with pytest.raises(ConfigError, match=r"train.loader.mode"):
        build_config(overrides=["train.loader.mode=disk"])
    with pytest.raises(ConfigError, match=r"train.loader.memory_limit_mb"):
        build_config(overrides=["train.loader.memory_limit_mb=0"])


@pytest.mark.parametrize("kind", ["pixelate", "blur", "reference"])
def test_ablation_degradation_kinds(kind):
    # e.g. the rebuttal's row "pixelate at severity 5"; reference: imagecorruptions' stacked three
    config = build_config(overrides={"generation": {"ablation_degradation": {"kind": kind, "severity": 5}}})
    assert config.generation.ablation_degradation.model_dump() == {"kind": kind, "severity": 5}


def test_ablation_degradation_is_checked():
    # its fields are the plan identity of stored degraded tables: the default dumps as it always did
    assert build_config().generation.ablation_degradation.model_dump() == {"kind": "pixelate", "severity": 3}
    with pytest.raises(ConfigError, match=r"^config: generation.ablation_degradation.kind: .*'fog'"):
        build_config(overrides=["generation.ablation_degradation.kind=fog"])
    with pytest.raises(ConfigError, match=r"^config: generation.ablation_degradation.severity: "):
        build_config(overrides=["generation.ablation_degradation.severity=6"])


def test_counts_from_takes_every_count_rule():
    from fake2real.train.mixtures import COUNT_RULES

    assert "biased" in COUNT_RULES
    for rule in COUNT_RULES:
        assert build_config(overrides=[f"generation.counts_from={rule}"]).generation.counts_from == rule
    with pytest.raises(ConfigError, match=r"^config: generation.counts_from: "):
        build_config(overrides=["generation.counts_from=mix"])


# --- The paper's training protocol on real data -------------------------------------------------

# The paper's datasets; the offline benchmark (configs/fashion) is ours, sized for 2 CPU cores (docs/protocol.md).
REAL_CONFIGS = sorted(p for p in (REPO / "configs").glob("*/*.yaml") if p.parent.name not in ("evidence", "fashion"))


@pytest.mark.parametrize("path", REAL_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_dataset_config_trains_as_the_reference(path):
    from fake2real.presets import REFERENCE_TRAINING

    config = build_config(path)
    assert config.dataset.name != "shapes"
    assert config.train.model == "resnet50" and config.train.pretrained_file  # ImageNet weights
    for section, values in REFERENCE_TRAINING.items():
        assert {k: getattr(getattr(config.train, section), k) for k in values} == values, section


def test_paper_preset_trains_as_the_reference():
    from fake2real.presets import REFERENCE_TRAINING

    config = build_config(REPO / "configs" / "celebahq" / "r0.99.yaml", base=preset("paper"))
    for section, values in REFERENCE_TRAINING.items():
        assert {k: getattr(getattr(config.train, section), k) for k in values} == values, section
    assert config.sweep.search.stage1 and config.sweep.search.freeze_bn


def test_a_resnet_on_real_data_needs_pretrained_weights_or_an_explicit_none():
    base = {"dataset": {"name": "celebahq", "root": "/data/celebahq"}, "train": {"model": "resnet50"}}
    with pytest.raises(ConfigError) as error:
        build_config(overrides=base)
    message = str(error.value)
    assert "\n" not in message and "train.pretrained" in message and "none" in message
    opted_out = build_config(overrides=merge(base, {"train": {"pretrained": "none"}}))
    assert opted_out.train.pretrained_file is None
    assert build_config(overrides=merge(base, {"train": {"pretrained": "/w/resnet50.pth"}})).train.pretrained_file == "/w/resnet50.pth"
    # The built-in world and the small CNN need neither.
    assert build_config(overrides={"train": {"model": "resnet18"}}).train.pretrained_file is None


def test_a_finished_table_has_one_bias_ratio():
    with pytest.raises(ConfigError, match=r"^config: sweep.bias_ratios: a finished table \(dataset.table\) has the bias ratio it was made with"):
        build_config(overrides=["dataset.name=folder", "dataset.table=/data/t", "dataset.bias_ratio=null", "sweep.bias_ratios=[0.9,0.99]"])
