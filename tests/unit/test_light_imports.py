"""What reading a config and writing a report import (issue 30): a config parses without torch or
Ray, and the report reads checkpoints without Ray Train. Each check runs in a fresh interpreter,
since this test process has imported everything already."""

from __future__ import annotations

import subprocess
import sys

import pytest


def imported(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are in ``sys.modules`` after ``code`` ran in a fresh interpreter."""
    probe = f"import sys\n{code}\nprint(' '.join(n for n in {names!r} if n in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_config_parses_without_torch_or_ray():
    code = "from fake2real.config import build_config\nbuild_config(overrides=['sweep.methods=[erm, groupdro, jtt, dfr]'])"
    assert imported(code, ("torch", "ray", "torchvision", "diffusers", "mlflow")) == []


def test_a_config_error_names_a_method_parameter_without_torch():
    # the method's declared space is read (to refuse the value) without importing its torch code
    code = ("from fake2real.config import build_config\nfrom fake2real.errors import ConfigError\n"
            "try:\n    build_config(overrides=['train.method_params.groupdro.eta=-1'])\n"
            "except ConfigError as exc:\n    print(exc)")
    probe = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint('torch' in sys.modules)"],
                           capture_output=True, text=True, timeout=120)
    assert probe.stdout.splitlines() == ["config: train.method_params.groupdro.eta: -1 is outside [0.0001, 1.0]", "False"]


@pytest.mark.parametrize("module", ["report.table", "report.html", "report.regime", "report.figures", "report.saliency"])
def test_the_report_imports_no_ray_train(module):
    assert imported(f"import fake2real.{module}", ("ray.train", "ray.tune")) == []


def test_a_lazy_module_is_the_module_at_first_use():
    code = "from fake2real.train.methods import get_method\nimport sys\nassert 'torch' not in sys.modules\n" \
           "import numpy as np\nm = get_method('resample')({}, np.array([0, 0, 1]), 2)\nprint(m.sample_weights().tolist())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0.5, 0.5, 1.0]"


SEARCHED = ["sweep.search.num_samples=4", "sweep.search.stage1=true", "sweep.mixtures=[none, ffr, usb]", "train.num_workers=1"]


@pytest.mark.parametrize("overrides", [[], SEARCHED])
def test_a_sweeps_dry_run_imports_no_torch_and_no_ray_library(tmp_path, overrides):
    # The dry run plans with the run's own code (search_plan, stage records, pools) without the
    # libraries that train; Ray's core may be read for a local cluster's size (capacity.py).
    code = ("from fake2real.config import build_config\nfrom fake2real.entrypoints import sweep_dry_run\n"
            f"print(sweep_dry_run(build_config(overrides={[f'output_dir={tmp_path}', *overrides]!r})).splitlines()[-1], file=sys.stderr)")
    assert imported(code, ("torch", "torchvision", "ray.train", "ray.tune", "ray.data", "diffusers", "mlflow")) == []
