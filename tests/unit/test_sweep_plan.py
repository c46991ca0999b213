"""The sweep's dry run without Ray: what it counts, its cost arithmetic, and that it writes nothing.
(That its counts equal what a sweep then does: tests/integration/test_methods_mixtures.py.)"""

from __future__ import annotations

import re

import pytest

from fake2real.prepare.cost import MEASURED, rates
from fake2real.entrypoints import sweep_dry_run


def test_the_quick_sweep_plan_without_any_work(tmp_path, make_config):
    text = sweep_dry_run(make_config())  # none/ffr × erm/groupdro, r = 0.99, one seed
    assert not (tmp_path / "out").exists()  # nothing written, no Ray started
    # r = 0.99 of 1000 per group: 1000 majority and ceil(1000 · 0.01 / 0.99) = 11 minority
    assert "train y0_b0 1000, y0_b1 11, y1_b0 11, y1_b1 1000)" in text
    # ffr's budget: (1000 − 11) · 2 = 1978 → 494 per group; the test pool: 100 per group
    assert re.search(r"pool-shapes-\w+ \(procedural, train\): holds 0, must add 1976", text)
    assert re.search(r"pool-test-shapes-\w+ \(procedural, test\): holds 0, must add 400", text)
    # real × 2 methods, FFR's stage 1 once (shared), FFR's stage 2 × 2 methods
    assert "stages to train after sharing: 5 (2 real, 1 stage1_synthetic, 2 stage2_real)" in text
    assert "search trials" not in text
    # Each of those 5 stages also pays the measured fixed cost of a 2-worker CPU stage.
    assert "stage start-ups: 5 stages × 12.7 s = 0.02 h one after another (measured for 2 CPU worker(s) per stage" in text


def test_start_ups_count_search_trials_and_say_when_unmeasured(make_config):
    text = sweep_dry_run(make_config("sweep.search.num_samples=3", "train.num_workers=1"))
    assert "search trials: 12 (3 per searched cell" in text
    # The 12 trials and FFR's stage 1: each searched cell's first seed is its selected trial, not a 13th stage.
    assert "stages to train after sharing: 1 (1 stage1_synthetic) besides the searches'" in text
    assert "stage start-ups: 13 stages × 0.7 s = 0.00 h" in text
    gpu = sweep_dry_run(make_config("train.use_gpu=true"))
    assert "stage start-ups: 5 stages; no measured fixed cost for 2 GPU worker(s) per stage" in gpu


def test_budgets_share_one_pool_sized_to_the_largest_draw(make_config):
    text = sweep_dry_run(make_config("sweep.mixtures=[usb,asb,ffr]", "sweep.methods=[erm]", "sweep.bias_ratios=[0.95,0.99]",
                                     "generation.test_images_per_group=0"))
    pools = re.findall(r"pool-shapes-\w+ \(procedural, train\): holds 0, must add (\d+)", text)
    # usb at 0.99 fills each minority group with 989; ffr/asb at 0.99 take 494 of every group.
    assert pools == [str(989 * 2 + 494 * 2)]
    assert "y0_b1: holds 0, needs 989, adds 989" in text and "y0_b0: holds 0, needs 494, adds 494" in text


def test_cost_in_device_hours_from_the_configured_rates(make_config):
    text = sweep_dry_run(make_config("sweep.cost.generation_images_per_second=0.5", "sweep.cost.training_images_per_second=100"))
    # Real table: train 1000/11/11/1000 = 2022, val 100/10/10/100 = 220, test 800. A stage trains
    # and validates every epoch (8), validates its starting model once and tests once:
    # real and stage 2 (× 2 methods each): 8 · (2022 + 220) + 220 + 800 = 18956;
    # stage 1 on 4 · 494 synthetic images: 8 · (1976 + 220) + 220 + 800 = 18588.
    passes = 4 * 18956 + 18588
    assert f"images to generate: 2376; image passes to train and evaluate: {passes} " in text
    assert f"generation: {2376 / 0.5 / 3600:.2f} device-hours at 0.5 images/s (sweep.cost.generation_images_per_second)" in text
    assert f"training: {passes / 100 / 3600:.2f} device-hours at 100 images/s" in text
    assert f"estimated total: {2376 / 0.5 / 3600 + passes / 100 / 3600:.2f} device-hours" in text


def test_search_trials_are_counted_per_searched_cell(make_config, monkeypatch):
    # Planned for a cluster the job joins: a 2-core machine's own cluster cannot hold a 2.1-CPU trial.
    monkeypatch.setenv("RAY_ADDRESS", "ray-head:6379")
    text = sweep_dry_run(make_config("sweep.search.num_samples=3"))
    assert "search trials: 12 (3 per searched cell" in text  # 4 cells (none, ffr × erm, groupdro)
    text = sweep_dry_run(make_config("sweep.search.num_samples=3", "sweep.search.stage1=true"))
    # Each ffr cell's 3: 1 in the stage-1 search (searched once for both ffr cells), 2 in its own.
    assert "search trials: 11 (3 per searched cell, its stage-1 search's included" in text


def test_a_rate_is_measured_for_its_model_size_and_device_or_unknown(make_config):
    found = rates(make_config())
    assert (found.training, found.generation) == (MEASURED[("training", "small_cnn", "cpu", 32)], MEASURED[("generation", "procedural", "cpu", 32)])
    larger = rates(make_config("dataset.shapes.image_size=64"))  # measured at 32² only: not reused at 64²
    assert larger.training is None and larger.training_source == "no measured rate for small_cnn at 64² on cpu"
    sd = rates(make_config("generation.backend=diffusers", "generation.diffusers.model=/models/sd", "generation.diffusers.device=cuda"))
    assert sd.generation is None and sd.generation_source == "no measured rate for diffusers at 512² on gpu"


def test_your_own_folders_planned_and_a_shortfall_refused_before_any_work(tmp_path, make_config):
    import native_fixtures as fixtures
    from fake2real.errors import ConfigError

    real = fixtures.folder(tmp_path / "pets")
    synthetic = fixtures.synthetic_folder(tmp_path / "generated", per_group=7)
    base = ["dataset.name=folder", f"dataset.root={real}", "dataset.bias_ratio=null", "dataset.image_size=16",
            "generation.backend=folder", f"generation.folder.root={synthetic}", "generation.test_images_per_group=0",
            "sweep.mixtures=[none,usb,ffr]", "sweep.methods=[erm]"]
    text = sweep_dry_run(make_config(*base))
    # real train 10/3/3/10: usb needs 7 of each small group, ffr 14 // 4 = 3 of every group; 7 listed per group
    assert re.search(r"pool-folder-\w+ \(folder, train\): holds 28, must add 0", text)
    assert "images to generate: 0;" in text and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError) as error:
        sweep_dry_run(make_config(*base, "generation.test_images_per_group=2"))
    assert "holds 0 test images of group y0_b0 (cat, indoor); 2 are needed (short by 2) (mark held-out rows split=test" in str(error.value)


@pytest.mark.parametrize("overrides, message", [
    # A trial that waits on a TorchTrainer holds a sliver of a CPU besides its workers.
    (["train.num_workers=2", "train.cpus_per_worker=1", "sweep.search.num_samples=2"],
     "config: a search trial needs 2.1 CPUs (train.num_workers × train.cpus_per_worker + 0.1 for its driver) "
     "but the local Ray cluster the job starts without RAY_ADDRESS has 2: lower train.cpus_per_worker"),
    # A single-worker trial trains in its own process: its worker's CPUs are all it holds.
    (["train.num_workers=1", "train.cpus_per_worker=2.5", "sweep.search.num_samples=2"],
     "config: a search trial needs 2.5 CPUs (train.num_workers × train.cpus_per_worker) "
     "but the local Ray cluster the job starts without RAY_ADDRESS has 2: lower train.cpus_per_worker"),
    (["train.cpus_per_worker=1.5"],
     "config: an experiment's stage needs 3 CPUs (train.num_workers × train.cpus_per_worker) "
     "but the local Ray cluster the job starts without RAY_ADDRESS has 2: lower train.cpus_per_worker"),
    # An axis may change what a trainer needs: each of its train sections is checked.
    (["train.num_workers=1", "sweep.axes={train.cpus_per_worker: [1, 4]}"],
     "config: an experiment's stage needs 4 CPUs (train.num_workers × train.cpus_per_worker) "
     "but the local Ray cluster the job starts without RAY_ADDRESS has 2: lower train.cpus_per_worker"),
])
def test_a_trainer_the_local_cluster_cannot_hold_is_refused_before_ray_and_any_run(tmp_path, make_config, monkeypatch, overrides, message):
    from fake2real.run import capacity, sweep
    from fake2real.errors import ConfigError

    def started(*_, **__):
        raise AssertionError("MLflow or Ray was reached before the sweep's checks refused it")

    monkeypatch.setattr(capacity, "local_cluster_cpus", lambda: 2.0)  # no RAY_ADDRESS: a 2-core machine's own cluster
    monkeypatch.setattr(sweep, "Tracker", started)
    monkeypatch.setattr(sweep, "init_ray", started)
    built = make_config(*overrides)
    for job in (sweep_dry_run, sweep.run_sweep):
        with pytest.raises(ConfigError) as info:
            job(built)
        assert str(info.value) == message
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(capacity, "local_cluster_cpus", lambda: None)  # RAY_ADDRESS: that cluster is sized once Ray is up
    assert "stages to train after sharing" in sweep_dry_run(built)


def test_a_single_worker_search_trial_fits_a_cluster_of_exactly_its_cpus(make_config, monkeypatch):
    from fake2real.run import capacity

    monkeypatch.setattr(capacity, "local_cluster_cpus", lambda: 2.0)
    built = make_config("train.num_workers=1", "train.cpus_per_worker=2", "sweep.search.num_samples=2")
    assert "stages to train after sharing" in sweep_dry_run(built)
    assert capacity.trial_resources(built) == {"CPU": 2.0}
    assert capacity.trainers_at_once(built, *capacity.trial_driver(built), ({"CPU": 2.0}, False)) == 1


def test_a_sweep_over_its_experiment_limit_is_refused_by_the_run_not_by_its_dry_run(make_config, monkeypatch):
    from fake2real.run import sweep
    from fake2real.errors import ConfigError
    from fake2real.run.sweep_plan import cells

    def started(*_, **__):
        raise AssertionError("the run went on to its cells, MLflow or Ray")

    for name in ("check_sweep", "Tracker", "init_ray"):  # refused first, without making a cell
        monkeypatch.setattr(sweep, name, started)
    gaps = ", ".join(str(i / 1000) for i in range(1001))
    grid = make_config("sweep.mixtures=[none]", "sweep.methods=[erm]", f"sweep.axes={{dataset.shapes.semantic_gap: [{gaps}]}}")
    with pytest.raises(ConfigError) as info:
        sweep.run_sweep(grid)
    assert str(info.value) == ("config: sweep.max_experiments: this sweep is 1001 experiments (1 seed × 1 bias ratio × 1001 axis points "
                               "× 1 mixture/method pair), more than 1000: check its plan with --dry-run, then raise sweep.max_experiments")
    # The dry run prints the plan and says so (here a smaller limit: 2 seeds × 2 ratios × 4 pairs = 16 experiments).
    small = make_config("sweep.seeds=[0, 1]", "sweep.bias_ratios=[0.9, 0.99]", "sweep.max_experiments=10")
    text = sweep_dry_run(small)
    assert ("experiments: 16 (2 seeds × 2 bias ratios × 1 axis point × 4 mixture/method pairs); "
            "more than sweep.max_experiments=10: the run refuses it") in text
    assert len(cells(small)) == 16 and "stages to train after sharing" in text
    with pytest.raises(ConfigError, match=r"^config: sweep.max_experiments: this sweep is 16 experiments"):
        sweep.run_sweep(small)
    # How a job runs, not what it computes: the limit is no part of the sweep's identity.
    assert small.digest() == make_config("sweep.seeds=[0, 1]", "sweep.bias_ratios=[0.9, 0.99]").digest()


def test_the_generate_dry_run_refuses_an_imported_shortfall_as_its_run_does(tmp_path, make_config):
    import native_fixtures as fixtures
    from fake2real.entrypoints import generate_dry_run
    from fake2real.errors import ConfigError

    real = fixtures.folder(tmp_path / "pets")
    synthetic = fixtures.synthetic_folder(tmp_path / "generated", per_group=1)
    overrides = ["dataset.name=folder", f"dataset.root={real}", "dataset.bias_ratio=null", "generation.backend=folder",
                 f"generation.folder.root={synthetic}", "generation.images_per_group=3"]
    with pytest.raises(ConfigError) as error:
        generate_dry_run(make_config(*overrides))
    assert str(error.value) == (f"config: generation.folder: {synthetic} holds 1 train images of group y0_b0 (cat, indoor); "
                                "3 are needed (short by 2)")
    assert not (tmp_path / "out").exists()
    assert generate_dry_run(make_config(*overrides[:-1], "generation.images_per_group=1")).endswith("draws 4 images")
