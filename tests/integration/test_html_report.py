"""``jobs/report.py`` on a real MLflow store filled by a smoke sweep, opened in headless Chromium.

Chromium is Debian's (`apt-get install chromium`, part of the README's test command): the page
is loaded, a screenshot taken, and the DOM read back after the figures' images decoded.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from PIL import Image
from mlflow.tracking import MlflowClient

from fake2real.config import build_config
from fake2real.presets import preset
from fake2real.sweep import run_sweep
from helpers import run_job

FIGURES = ("wga-vs-bias-ratio", "group-accuracy", "g-leakage", "synthetic-images-0", "saliency")


def chromium(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install chromium (the README's test command does)")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_report_from_a_smoke_sweep(ray_connected, tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = build_config(
        overrides={
            "output_dir": str(tmp_path / "out"),
            "tracking": {"uri": tracking, "experiment": "report"},
            "generation": {"test_images_per_group": 10},
            "train": {"num_workers": 1},
        },
        base=preset("smoke"),
    )
    sweep = run_sweep(config)

    page = tmp_path / "report.html"
    completed = run_job("report.py", "--tracking-uri", tracking, "--experiment", "report", "--output", str(page), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"report: {page}" in completed.stdout
    assert "report.html" in {a.path for a in MlflowClient(tracking_uri=tracking).list_artifacts(sweep.run_id)}

    shot = tmp_path / "report.png"
    taken = chromium("--window-size=1280,3000", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), taken.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 3000)
        assert len(image.convert("L").resize((64, 150)).getcolors(256) or ()) > 20  # not a blank page

    dom = chromium("--dump-dom", page.as_uri()).stdout
    for figure in FIGURES:
        assert f'<figure id="{figure}">' in dom, figure
    decoded = re.search(r'data-figures-decoded="(\d+)"', dom)
    assert decoded and int(decoded.group(1)) == dom.count('class="figure"') == len(FIGURES)
    # The table has one row per cell, read from MLflow: both methods of the smoke sweep.
    assert "<td>ffr</td><td>erm</td><td>1</td>" in dom and "<td>ffr</td><td>groupdro</td><td>1</td>" in dom
    assert sweep.run_id in dom


def test_report_of_an_unknown_experiment_is_one_line(tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    missing = run_job("report.py", "--tracking-uri", tracking, "--experiment", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: no MLflow store at ")
    assert not (tmp_path / "mlflow.db").exists()  # a mistyped path does not become an empty store
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking).create_experiment("other")
    completed = run_job("report.py", "--tracking-uri", tracking, "--experiment", "nope", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: report: no MLflow experiment 'nope' at {tracking}"
    assert not (tmp_path / "outputs").exists()
