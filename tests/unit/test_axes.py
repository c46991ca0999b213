"""Sweep axes over any config key: validated as a whole, expanded into cells that carry their
point, sharing by identity what does not depend on an axis, and run several at once."""

from __future__ import annotations

import re
import threading
import time

import pytest

from fake2real.run import experiment
from fake2real.config import build_config
from fake2real.data.storage import Location
from fake2real.entrypoints import sweep_dry_run
from fake2real.errors import ConfigError
from fake2real.run.sweep_plan import cells, real_cells
from fake2real.prepare.workspace import Workspace, real_location

GAP_AND_ARTIFACT = "sweep.axes={dataset.shapes.semantic_gap: [0.0, 0.5], dataset.shapes.artifact_strength: [0.0, 0.08, 0.3]}"


@pytest.mark.parametrize("axes, message", [
    ("{dataset.shapes.nope: [1]}", "config: sweep.axes: unknown config key 'dataset.shapes.nope'"),
    ("{seed: [1, 2]}", "config: sweep.axes.seed: not an axis (use sweep.seeds)"),
    ("{dataset.bias_ratio: [0.9]}", "config: sweep.axes.dataset.bias_ratio: not an axis (use sweep.bias_ratios)"),
    ("{train.method: [erm]}", "config: sweep.axes.train.method: not an axis (use sweep.methods)"),
    ("{train.loader.mode: [memory]}", "config: sweep.axes.train.loader.mode: not an axis (it sets how a job runs, not what it computes)"),
    ("{sweep.seeds: [[1]]}", "config: sweep.axes.sweep.seeds: not an axis (it shapes the sweep itself)"),
    ("{dataset.shapes.semantic_gap: []}", "config: sweep.axes.dataset.shapes.semantic_gap: must list at least one value"),
    ("{dataset.shapes.semantic_gap: [0.5, 0.5]}", "config: sweep.axes.dataset.shapes.semantic_gap: values repeat ([0.5, 0.5])"),
    ("{dataset.shapes.semantic_gap: [0, 7]}",
     "config: sweep.axes: at semantic_gap=7: dataset.shapes.semantic_gap: Input should be less than or equal to 1 (got 7)"),
])
def test_an_axis_is_checked_before_any_work_in_one_line(make_config, axes, message):
    with pytest.raises(ConfigError) as caught:
        make_config(f"sweep.axes={axes}")
    assert str(caught.value) == message


def test_points_are_checked_as_a_whole():
    # Each value is valid alone; 3 workers do not divide a global batch of 128.
    with pytest.raises(ConfigError, match=r"^config: sweep.axes: at num_workers=3, batch_size=128: train.real.batch_size \(128\) "
                                          r"must be a multiple of train.num_workers \(3\)"):
        build_config(overrides=["sweep.axes={train.num_workers: [1, 3], train.real.batch_size: [128]}"])


def test_without_axes_the_sweep_keeps_its_identity_and_with_them_it_has_its_own(make_config):
    plain = make_config()
    assert plain.digest() == make_config("sweep.axes={}").digest()
    assert make_config(GAP_AND_ARTIFACT).digest() != plain.digest()
    # How many run at once is how a sweep runs, not what it computes.
    assert make_config("sweep.max_concurrent_experiments=3").digest() == plain.digest()


def test_cells_span_the_product_and_carry_their_point(make_config):
    sweep = make_config(GAP_AND_ARTIFACT, "sweep.seeds=[0, 1]")
    found = cells(sweep)
    assert len(found) == 2 * 6 * 4  # seeds × points × (none, ffr) × (erm, groupdro)
    first_seed = [c for c in found if c.seed == 0]
    points = list(dict.fromkeys(tuple(c.point().values()) for c in first_seed))
    assert points == [(0.0, 0.0), (0.0, 0.08), (0.0, 0.3), (0.5, 0.0), (0.5, 0.08), (0.5, 0.3)]  # the first axis slowest
    for cell in found:
        assert (cell.dataset.shapes.semantic_gap, cell.dataset.shapes.artifact_strength) == tuple(cell.point().values())
    assert [c.seed for c in found] == [0] * 24 + [1] * 24  # seed-major
    assert make_config().point() == {}


def test_a_real_table_is_shared_by_points_that_only_change_the_synthetic_renderer(tmp_path, make_config):
    workspace = Workspace(Location(str(tmp_path / "out")))
    default = make_config()
    # The default world's table keeps its name: tables stored before are found again.
    assert real_location(default, workspace).name == "real-shapes-" + default.digest("dataset")
    sweep = make_config(GAP_AND_ARTIFACT)
    assert {str(real_location(c, workspace)) for c in cells(sweep)} == {str(real_location(default, workspace))}
    assert len(real_cells(sweep)) == 1
    harder = make_config("sweep.axes={dataset.shapes.y_difficulty: [0.3, 0.6]}")
    assert len(real_cells(harder)) == 2  # the real images change: a table per point


def test_the_plan_shares_what_no_axis_changes(make_config):
    text = sweep_dry_run(make_config("sweep.axes={dataset.shapes.artifact_strength: [0.0, 0.3]}"))
    assert "axis points: 2 (artifact_strength=0.0; artifact_strength=0.3)" in text
    assert len(re.findall(r"^  r=0.99: ", text, re.M)) == 1  # one real table
    assert len(re.findall(r"pool-shapes-\w+ \(procedural, train\)", text)) == 2  # a pool per artifact strength
    # Real-only stages do not depend on the renderer: shared by both points; FFR's are per point.
    assert "stages to train after sharing: 8 (2 real, 2 stage1_synthetic, 4 stage2_real)" in text


def test_a_searched_plan_counts_each_points_search_and_its_selected_trial_once(make_config):
    text = sweep_dry_run(make_config("sweep.axes={dataset.shapes.artifact_strength: [0.0, 0.3]}", "sweep.seeds=[0,1]",
                                     "sweep.search.num_samples=2", "train.num_workers=1"))
    # Searched cells: none × 2 methods (shared by both points) + ffr × 2 methods × 2 points = 6, so 12 trials.
    assert "search trials: 12 (2 per searched cell" in text
    # Of the 16 stages of two seeds, each searched cell's seed-0 last stage is its selected trial:
    # real 4 − 2, FFR's stage 1 per point and seed 4, stage 2 8 − 4.
    assert "stages to train after sharing: 10 (2 real, 4 stage1_synthetic, 4 stage2_real) besides the searches'" in text
    assert "stage start-ups: 22 stages" in text


def test_experiments_run_at_once_and_come_back_in_order(make_config, monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()

    def fake_run(config, tracker, parent_run_id=None):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05 * (3 - config.seed % 3))  # later ones finish first
        with lock:
            running[0] -= 1
        return experiment.ExperimentResult("none", "erm", config.seed, f"run-{config.seed}")

    monkeypatch.setattr(experiment, "run_experiment", fake_run)
    configs = [make_config(f"seed={seed}") for seed in range(6)]
    seen = []
    results = experiment.run_experiments(configs, None, None, 2, lambda done, latest: seen.append((len(done), latest.seed)))
    assert [r.seed for r in results] == list(range(6))
    assert peak[0] == 2
    assert [n for n, _ in seen] == [1, 2, 3, 4, 5, 6] and sorted(s for _, s in seen) == list(range(6))


def test_an_error_ends_the_sweep_and_nothing_new_starts(make_config, monkeypatch):
    started = []

    def fake_run(config, tracker, parent_run_id=None):
        started.append(config.seed)
        if config.seed == 0:
            raise RuntimeError("stage failed")
        time.sleep(0.2)
        return experiment.ExperimentResult("none", "erm", config.seed, "r")

    monkeypatch.setattr(experiment, "run_experiment", fake_run)
    with pytest.raises(RuntimeError, match="stage failed"):
        experiment.run_experiments([make_config(f"seed={s}") for s in range(5)], None, None, 2)
    time.sleep(0.3)
    assert sorted(started) == [0, 1, 2] or sorted(started) == [0, 1]  # the error stops what had not started


def test_a_shared_stage_trains_once_while_the_other_experiment_waits(monkeypatch):
    trained, inside = [], []

    def once(self, tracker, run_id, name, spec, in_trial, to_tune):
        inside.append(name)
        assert len(inside) == 1, "two threads trained the same stage at once"
        time.sleep(0.1)
        trained.append(name)
        inside.pop()
        return name

    monkeypatch.setattr(experiment.Experiment, "_train_stage_once", once)

    class Spec:
        def key(self):
            return "shared-stage"

    one = object.__new__(experiment.Experiment)  # its tables play no part in the lock
    threads = [threading.Thread(target=one._train_stage, args=(None, None, name, Spec(), False, False))
               for name in ("ffr/erm", "ffr/groupdro")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(trained) == ["ffr/erm", "ffr/groupdro"]  # one after the other; the second finds it finished


def _regime_results():
    """Two gaps × two strengths, 3 seeds: FFR far above ASB at gap 0, far below at gap 1 (tight
    seeds), and level with USB everywhere (wide seeds)."""
    from fake2real.train.stage_record import StageResult

    base = {"asb": 0.6, "usb": 0.6}
    out = []
    for seed, jitter in enumerate((-0.05, 0.0, 0.05)):
        for gap in (0.0, 1.0):
            for strength in (0.0, 0.3):
                for mixture in ("usb", "asb", "ffr"):
                    wga = (0.9 - 0.6 * gap) + jitter / 5 if mixture == "ffr" else base[mixture] + (jitter * 4 if mixture == "usb" else jitter / 5)
                    out.append(experiment.ExperimentResult(
                        mixture, "erm", seed, f"r{len(out)}", 0.99, [StageResult("k", "c", {"test/worst_group_accuracy": wga})],
                        point={"dataset.shapes.semantic_gap": gap, "dataset.shapes.artifact_strength": strength}))
    return out


def test_the_regime_map_marks_where_the_intervals_do_not_overlap(tmp_path):
    from PIL import Image

    from fake2real.report import regime
    from fake2real.report.table import chart

    text = "\n".join(regime.markdown(_regime_results()))
    assert "#### ffr − asb, erm, r = 0.99" in text and "#### ffr − usb, erm, r = 0.99" in text
    assert "| semantic_gap \\ artifact_strength | 0.0 | 0.3 |" in text
    assert "| semantic_gap=0.0 | +0.300* | +0.300* |" in text  # separated above
    assert "| semantic_gap=1.0 | -0.300* | -0.300* |" in text  # separated below
    assert "ffr separated above asb at 2 of 4 points, below at 2." in text
    # Against USB the seeds spread ±0.2: the same differences are not separated, so not marked.
    usb = text.split("#### ffr − usb")[1]
    assert "*" not in usb.split("\n\n", 2)[1] and "ffr separated above usb at 0 of 4 points, below at 0." in usb
    assert regime.markdown([r for r in _regime_results() if r.mixture == "ffr"]) == []  # nothing to compare
    chart(_regime_results(), tmp_path / "results.png", "regime")
    with Image.open(tmp_path / "results.png") as image:
        assert image.width > 2 * image.height  # two heatmap panels side by side, not the bar chart


def test_a_sweep_with_axes_charts_every_points_cells(tmp_path):
    """Beside the regime map (differences), results-cells.png shows what they are made of: a panel
    of bars per point; a sweep without axes writes results.png only."""
    from PIL import Image

    from fake2real.report.table import write_charts

    written = write_charts(_regime_results(), tmp_path, "regime")
    assert written == ["results.png", "results-cells.png"]
    points = len({tuple(r.point.items()) for r in _regime_results()})
    with Image.open(tmp_path / "results-cells.png") as image:
        assert image.height > points * 200  # a panel per point, stacked
    plain = [r for r in _regime_results() if r.point == _regime_results()[0].point]
    for r in plain:
        r.point = {}
    assert write_charts(plain, tmp_path / ".." / tmp_path.name, "plain") == ["results.png"]
