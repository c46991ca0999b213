"""Bad input through the real entry points: one line naming the problem, nonzero exit, and no
output that looks complete. All of these fail before any Ray work starts."""

from __future__ import annotations

import socket
import time

import pytest

from helpers import run_job


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_line_error(completed, *needles: str) -> str:
    assert completed.returncode != 0, completed.stdout
    lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "overrides, needles",
    [
        (["train.lrr=0.1"], ["unknown key", "train.lrr"]),
        (["dataset.bias_ratio=1.0"], ["dataset.bias_ratio"]),
        (["dataset.bias_ratio=0.4"], ["dataset.bias_ratio"]),
        (["generation.images_per_group=0"], ["generation.images_per_group"]),
        (["sweep.methods=[erm,nope]"], ["unknown method 'nope'", "groupdro"]),
        (["sweep.mixtures=[fake]"], ["unknown mixture 'fake'", "ffr"]),
        (["train.method_params={groupdro: {etaa: 1}}"], ["etaa", "eta"]),
        (["not-an-override"], ["not-an-override"]),
        (["sweep.mixtures=[ffr_reversal]"], ["unknown mixture 'ffr_reversal'", "ffr_reversed", "synthetic_only"]),
        (["sweep.ablation_methods=[dfrr]"], ["unknown method 'dfrr'", "dfr", "jtt", "resample", "reweight"]),
        # A text-to-image model told no bias words picks B itself: no group labels for GroupDRO.
        (
            ["generation.prompts=celeba", "generation.bias_words=false", "sweep.mixtures=[synthetic_only]", "sweep.methods=[groupdro]"],
            ["method 'groupdro' needs group labels", "synthetic_only", "without bias words"],
        ),
        # A mixture that needs synthetic images, for a dataset with no generator configured.
        (
            ["dataset.name=celeba", "dataset.root=/nonexistent", "sweep.mixtures=[usb]", "sweep.methods=[erm]"],
            ["generation.backend", "needs generation.backend=diffusers"],
        ),
    ],
)
def test_config_errors(tmp_path, overrides, needles):
    completed = run_job("sweep.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", *overrides, timeout=120)
    assert_one_line_error(completed, *needles)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("table.json"))


def test_missing_config_file(tmp_path):
    completed = run_job("sweep.py", "--config", str(tmp_path / "nope.yaml"), timeout=120)
    assert_one_line_error(completed, "nope.yaml")


def test_empty_group_in_a_split(tmp_path):
    # The reference's rule keeps the ceiling of a positive target, so subsampling alone never
    # empties a group: a split that has none of a group's images does (smiling men in train).
    from native_fixtures import CELEBA_COUNTS, celeba

    counts = {split: dict(groups) for split, groups in CELEBA_COUNTS.items()}
    counts["train"][(1, 1)] = 0
    root = celeba(tmp_path / "celeba", counts)
    completed = run_job(
        "ingest.py", "dataset.name=celeba", f"dataset.root={root}", f"output_dir={tmp_path / 'out'}", timeout=120,
    )
    assert_one_line_error(completed, "group y1_b1 is empty", "train")
    assert not any((tmp_path / "out").rglob("table.json"))


def test_unwritable_output_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    completed = run_job("sweep.py", "--preset", "smoke", f"output_dir={blocker / 'out'}", timeout=120)
    assert_one_line_error(completed, "not writable", str(blocker / "out"))


def test_unreachable_tracking_uri(tmp_path):
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    completed = run_job("sweep.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", f"tracking.uri={uri}", timeout=120)
    assert_one_line_error(completed, "cannot use MLflow", uri)
    assert time.monotonic() - started < 60
    assert not any((tmp_path / "out").rglob("table.json"))


def test_generate_dry_run_prints_the_plan(tmp_path):
    completed = run_job("generate.py", "--preset", "smoke", "--dry-run", f"output_dir={tmp_path / 'out'}", timeout=120)
    assert completed.returncode == 0, completed.stderr
    # smoke at r=0.9: minority ceil(4.44) = 5, USB budget (40−5)·2 = 70 → 17 per group.
    for group in ("y0_b0", "y0_b1", "y1_b0", "y1_b1"):
        assert f"{group}: 17 images" in completed.stdout
    assert "a disc on a cool background" in completed.stdout
    assert not list((tmp_path / "out" / "data").glob("synthetic-*"))


def test_generate_for_a_mixture_without_synthetic_data(tmp_path):
    completed = run_job("generate.py", "--preset", "smoke", "--dry-run", "train.mixture=none", f"output_dir={tmp_path / 'out'}", timeout=120)
    assert_one_line_error(completed, "mixture 'none'", "generation.images_per_group")


def test_generate_dry_run_with_usb_counts(tmp_path):
    completed = run_job(
        "generate.py", "--preset", "smoke", "--dry-run", "train.mixture=none", "generation.counts_from=usb",
        f"output_dir={tmp_path / 'out'}", timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    # smoke train counts 40/5/5/40: USB fills the two minority groups up to 40, 35 images each.
    assert "pool " in completed.stdout and ": 70 images" in completed.stdout
    assert not (tmp_path / "out" / "data").exists()  # a dry run writes nothing, not even the real table
    assert "y0_b1: 35 images" in completed.stdout and "y1_b0: 35 images" in completed.stdout
    assert "y0_b0:" not in completed.stdout and "y1_b1:" not in completed.stdout


# --- Config text the loader refuses: one exact line, exit 2, before any Ray work ----------------

PROMPTS = "name: t\nclass_names: [a, b]\nbias_names: [c, d]\ntemplate: '{class} {bias}'\nclass_phrases: [[x], [y]]\n"


def assert_config_error(completed, message: str) -> None:
    assert completed.returncode == 2, completed.stderr
    assert assert_one_line_error(completed) == f"error: {message}"


def test_non_finite_number_is_refused(tmp_path):
    completed = run_job("sweep.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", "train.real.lr=.inf", timeout=120)
    assert_config_error(completed, "config: train.real.lr: Input should be a finite number (got inf)")
    assert not (tmp_path / "out").exists()


def test_duplicate_key_in_config_file(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\ntrain:\n  method: erm\n  method: groupdro\n")
    completed = run_job("sweep.py", "--preset", "smoke", "--config", str(path), f"output_dir={tmp_path / 'out'}", timeout=120)
    assert_config_error(completed, f"config: {path}: line 4: duplicate key 'train.method' (first at line 3)")
    assert not (tmp_path / "out").exists()


def test_config_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    completed = run_job("sweep.py", "--preset", "smoke", "--config", str(path), f"output_dir={tmp_path / 'out'}", timeout=120)
    assert_config_error(completed, f"config: {path} is not UTF-8 text: byte 0xe9 at offset 9")
    assert not (tmp_path / "out").exists()


def test_malformed_config_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: {method: erm\n")
    completed = run_job("sweep.py", "--preset", "smoke", "--config", str(path), f"output_dir={tmp_path / 'out'}", timeout=120)
    assert_config_error(
        completed,
        f"config: {path}: line 2, column 1: not valid YAML: expected ',' or '}}', but got '<stream end>' (while parsing a flow mapping at line 1, column 8)",
    )
    assert not (tmp_path / "out").exists()


def test_malformed_override(tmp_path):
    completed = run_job("sweep.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", "sweep.seeds=[0,1", timeout=120)
    assert_config_error(
        completed,
        "config: override 'sweep.seeds=[0,1': not valid YAML at column 17: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence at column 13)",
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, problem",
    [
        (PROMPTS + "bias_phrases: [[u], [v]\n",
         "line 7, column 1: not valid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 6, column 15)"),
        ((PROMPTS + "bias_phrases: [[u], [v]]\n").replace("[x]", "[caf\xe9]").encode("latin-1"), "is not UTF-8 text: byte 0xe9 at offset 94"),
        (PROMPTS + "bias_phrases: [[u], [v]]\ntemplate: '{class}'\n", "line 7: duplicate key 'template' (first at line 4)"),
    ],
    ids=["malformed", "not-utf8", "duplicate-key"],
)
def test_bad_prompt_template_file(tmp_path, content, problem):
    path = tmp_path / "prompts.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    completed = run_job("sweep.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", f"generation.prompts={path}", timeout=120)
    separator = " " if problem.startswith("is ") else ": "
    assert_config_error(completed, f"config: generation.prompts: {path}{separator}{problem}")
    assert not any((tmp_path / "out").rglob("table.json"))


def test_train_generator_without_a_generator_to_train(tmp_path):
    completed = run_job("train_generator.py", f"output_dir={tmp_path / 'out'}", timeout=120)
    assert_one_line_error(completed, "config: generation.backend=procedural trains no generator here")
    assert not (tmp_path / "out").exists()


def test_the_fashion_dataset_missing_names_the_package(tmp_path):
    completed = run_job("ingest.py", "dataset.name=fashion_mnist", f"dataset.root={tmp_path / 'fashion'}", f"output_dir={tmp_path / 'out'}",
                        timeout=120)
    assert_one_line_error(completed, "install it with: apt-get install dataset-fashion-mnist")
    assert not any((tmp_path / "out").rglob("table.json"))
