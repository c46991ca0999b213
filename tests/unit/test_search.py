"""The search's pieces without a cluster: spaces (valid Optuna spaces), defaults, applying a trial."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from fake2real.config import build_config
from fake2real.errors import ConfigError
from fake2real.run.search import search_space
from fake2real.run.search_plan import apply, cell_key, searches_stage1, stage1_cell, with_seed
from fake2real.track.mlflow_runs import Tracker
from fake2real.track.names import CELL, LEVEL_TAG, STAGE, trial_run_tags
from fake2real.train.methods import METHODS, get_method
from fake2real.train.mixtures import get_mixture


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("mixture", ["none", "ffr", "ffr_reversed"])
def test_every_method_space_is_a_valid_optuna_space(method, mixture):
    config = build_config(overrides={"train": {"method": method, "mixture": mixture}})
    space, defaults = search_space(config)
    distributions = OptunaSearch.convert_search_space(space)
    assert set(distributions) == set(space) == set(defaults)
    # The last stage's method: a mixture may fix it (ffr_reversed ends with ERM on synthetic data).
    trained = get_mixture(mixture).stages[-1].method or get_method(method).base_method or method
    # freeze_bn (the reference's) and LP-FT's head warm-up are searched for a stage that starts
    # from the previous stage's model.
    handed_over = {"freeze_bn", "head_warmup_epochs"} if get_mixture(mixture).stages[-1].init_from_previous else set()
    assert {f"method.{hp.name}" for hp in get_method(trained).hyperparameters} | {"lr", "weight_decay", "epochs"} | handed_over == set(space)
    for name, distribution in distributions.items():
        assert isinstance(distribution, optuna.distributions.BaseDistribution)
        # The configured defaults are the first trial: each must lie in its distribution.
        assert distribution._contains(distribution.to_internal_repr(defaults[name])), (name, defaults[name], distribution)


def test_epochs_range_and_defaults_follow_the_searched_stage():
    config = build_config(overrides={"train": {"mixture": "ffr_reversed", "synthetic": {"epochs": 6, "lr": 3e-3}, "real": {"epochs": 9}}})
    space, defaults = search_space(config)
    epochs = OptunaSearch.convert_search_space(space)["epochs"]
    assert (epochs.low, epochs.high) == (1, 6)  # ffr_reversed ends on synthetic data
    assert defaults["lr"] == 3e-3 and defaults["epochs"] == 6
    with pytest.raises(ConfigError, match=r"sweep.search.min_epochs \(7\) exceeds the stage's epochs \(6\)"):
        search_space(build_config(overrides={"train": {"mixture": "ffr_reversed", "synthetic": {"epochs": 6}}, "sweep": {"search": {"min_epochs": 7}}}))


def test_apply_puts_a_trial_into_the_last_stage_and_the_trained_method():
    config = build_config(overrides={"train": {"mixture": "ffr", "method": "groupdro"}})
    trial = {"lr": 0.004, "weight_decay": 2e-4, "epochs": 3, "method.eta": 0.2}
    applied = apply(config, trial)
    assert (applied.train.real.lr, applied.train.real.weight_decay, applied.train.real.epochs) == (0.004, 2e-4, 3)
    assert applied.train.synthetic == config.train.synthetic  # the shared stage 1 is untouched
    assert applied.train.method_params["groupdro"]["eta"] == 0.2
    dfr = apply(build_config(overrides={"train": {"method": "dfr"}}), {"lr": 0.01, "weight_decay": 1e-5, "epochs": 2})
    assert dfr.train.real.lr == 0.01 and dfr.train.method_params == {"erm": {}}  # DFR trains as ERM


def test_cell_key_names_the_search_not_the_seed_list():
    config = build_config(overrides={"sweep": {"search": {"num_samples": 4}}})
    assert cell_key(config) == cell_key(build_config(overrides={"sweep": {"search": {"num_samples": 4}, "seeds": [0, 1, 2]}}))
    # How many trials run at once changes the schedule, not the result.
    assert cell_key(config) == cell_key(build_config(overrides={"sweep": {"search": {"num_samples": 4, "max_concurrent_trials": 3}}}))
    assert cell_key(config) != cell_key(build_config(overrides={"sweep": {"search": {"num_samples": 5}}}))
    assert cell_key(config) != cell_key(with_seed(config, 1))


def test_freeze_bn_is_searched_for_stage_2_only_and_applied_to_it():
    ffr = build_config(overrides={"train": {"mixture": "ffr"}})
    space, defaults = search_space(ffr)
    assert "freeze_bn" in space and defaults["freeze_bn"] is False
    assert "freeze_bn" not in search_space(build_config(overrides={"train": {"mixture": "none"}}))[0]
    assert "freeze_bn" not in search_space(build_config(overrides={"train": {"mixture": "ffr"}, "sweep": {"search": {"freeze_bn": False}}}))[0]
    applied = apply(ffr, {"lr": 0.01, "weight_decay": 1e-5, "epochs": 2, "freeze_bn": True})
    assert applied.train.real.freeze_bn is True and applied.train.synthetic.freeze_bn is False


def test_asb_searches_its_own_section():
    config = build_config(overrides={"train": {"mixture": "asb", "asb": {"lr": 1e-4, "epochs": 5}}})
    _, defaults = search_space(config)
    assert (defaults["lr"], defaults["epochs"]) == (1e-4, 5)
    assert apply(config, {"lr": 0.002, "weight_decay": 1e-5, "epochs": 3}).train.asb.lr == 0.002


def test_stage1_is_searched_as_synthetic_only_erm_for_ffr_and_its_ablations():
    on = {"sweep": {"search": {"stage1": True}}}
    for mixture in ("ffr", "ffr_degraded", "ffr_unbalanced", "ffr_biased"):
        assert searches_stage1(build_config(overrides={**on, "train": {"mixture": mixture}}))
    for mixture in ("none", "usb", "asb", "ffr_reversed", "synthetic_only"):
        assert not searches_stage1(build_config(overrides={**on, "train": {"mixture": mixture}}))
    assert not searches_stage1(build_config(overrides={"train": {"mixture": "ffr"}}))
    stage1 = stage1_cell(build_config(overrides={**on, "train": {"mixture": "ffr", "method": "groupdro", "synthetic": {"epochs": 4}}}))
    assert (stage1.train.mixture, stage1.train.method) == ("synthetic_only", "erm")
    space, defaults = search_space(stage1)
    assert set(space) == {"lr", "weight_decay", "epochs"} and defaults["epochs"] == 4  # train.synthetic
    # Shared by every method of the cell's (dataset, r): one search, one key.
    other = stage1_cell(build_config(overrides={**on, "train": {"mixture": "ffr", "method": "resample", "synthetic": {"epochs": 4}}}))
    assert cell_key(stage1) == cell_key(other)


def test_stage1_search_counts_as_a_synthetic_plan_of_the_sweep(tmp_path):
    """The stage-1 search trains on FFR's synthetic data: with one generation.output folder, a
    sweep of an FFR ablation would need two plans there. Refused before any Ray work."""
    from fake2real.run.sweep import run_sweep

    overrides = {
        "output_dir": str(tmp_path / "out"),
        "generation": {"output": str(tmp_path / "synthetic")},
        "sweep": {"mixtures": ["none", "ffr_unbalanced"], "methods": ["erm"], "search": {"num_samples": 2, "stage1": True}},
    }
    with pytest.raises(ConfigError, match=r"^config: generation.output: one folder holds one synthetic pool") as error:
        run_sweep(build_config(overrides=overrides))
    assert "synthetic_only" in str(error.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("table.json"))


def test_trials_tune_stopped_are_killed_and_a_trial_that_failed_stays_failed(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "search", tmp_path / "artifacts")
    cell = tracker.run_for("cell", "cell", tags={LEVEL_TAG: CELL})
    runs = {}
    # a finished; b stopped before it reported (still RUNNING); c stopped by ASHA while its
    # training turned the stop into an error (FAILED); d failed on its own (Tune saw its error).
    for trial, status in [("a", "FINISHED"), ("b", "RUNNING"), ("c", "FAILED"), ("d", "FAILED")]:
        run = tracker.run_for(f"trial-{trial}", f"trial-{trial}", cell, tags=trial_run_tags(trial))
        stage = tracker.run_for(f"stage-{trial}", f"trial-{trial}/stage", run, tags={LEVEL_TAG: STAGE})
        if status != "RUNNING":
            tracker.finish(stage, status)
            tracker.finish(run, status)
        runs[trial] = (run, stage)
    tracker.close_stopped_trials(cell, stopped={"a", "c"})  # the trials Tune reports without an error
    status = {t: [tracker.client.get_run(r).info.status for r in pair] for t, pair in runs.items()}
    assert status == {"a": ["FINISHED"] * 2, "b": ["KILLED"] * 2, "c": ["KILLED"] * 2, "d": ["FAILED"] * 2}
    assert tracker.client.get_run(cell).info.status == "RUNNING"  # the cell goes on to its seeds


def test_a_stage_that_starts_from_a_previous_one_searches_two_decades_below_its_lr():
    ffr = build_config(overrides={"train": {"mixture": "ffr", "real": {"lr": 1e-3}}})
    low, high = OptunaSearch.convert_search_space(search_space(ffr)[0])["lr"].low, OptunaSearch.convert_search_space(search_space(ffr)[0])["lr"].high
    assert (low, high) == (pytest.approx(1e-5), 1e-2)
    # A stage from random (or ImageNet) weights keeps the configured range.
    none = OptunaSearch.convert_search_space(search_space(build_config(overrides={"train": {"mixture": "none"}}))[0])["lr"]
    assert (none.low, none.high) == (1e-4, 1e-2)
    # A configured range already reaching lower is kept.
    wide = build_config(overrides={"train": {"mixture": "ffr"}, "sweep": {"search": {"lr": ["loguniform", 1e-7, 1e-2]}}})
    assert OptunaSearch.convert_search_space(search_space(wide)[0])["lr"].low == 1e-7


def test_lp_ft_is_searched_and_applied_to_the_last_stage():
    from fake2real.run.search_plan import HEAD_WARMUP_EPOCHS, apply

    config = build_config(overrides={"train": {"mixture": "ffr"}})
    space, defaults = search_space(config)
    assert list(OptunaSearch.convert_search_space(space)["head_warmup_epochs"].choices) == list(HEAD_WARMUP_EPOCHS)
    assert defaults["head_warmup_epochs"] == 0  # the configured default is the first trial
    trial = apply(config, {**defaults, "head_warmup_epochs": 2})
    assert trial.train.real.head_warmup_epochs == 2 and trial.train.synthetic.head_warmup_epochs == 0
    off = build_config(overrides={"train": {"mixture": "ffr"}, "sweep": {"search": {"head_warmup": False}}})
    assert "head_warmup_epochs" not in search_space(off)[0]


def test_each_cell_draws_with_a_seed_of_its_own():
    from fake2real.run.search_plan import search_key, search_seed

    erm = build_config(overrides={"train": {"mixture": "ffr", "method": "erm"}, "sweep": {"search": {"num_samples": 4}}})
    dro = build_config(overrides={"train": {"mixture": "ffr", "method": "groupdro"}, "sweep": {"search": {"num_samples": 4}}})
    seeds = {search_seed(c, search_key(c)) for c in (erm, dro)}
    assert len(seeds) == 2 and all(0 <= seed < 2**32 for seed in seeds)
    assert search_seed(erm, search_key(erm)) == search_seed(erm, search_key(erm))  # stable: a restored search draws alike
    other = build_config(overrides={"train": {"mixture": "ffr", "method": "erm"}, "sweep": {"search": {"num_samples": 4, "seed": 1}}})
    assert search_seed(other, search_key(other)) != search_seed(erm, search_key(erm))


@pytest.mark.parametrize("num_samples, stage1, last", [(2, 1, 1), (5, 2, 3), (8, 4, 4)])
def test_a_stage1_search_spends_its_share_of_the_cells_trials(num_samples, stage1, last):
    from fake2real.run.search_plan import last_stage_cell, stage1_cell

    cell = build_config(overrides={"train": {"mixture": "ffr"}, "sweep": {"search": {"num_samples": num_samples, "stage1": True}}})
    assert stage1_cell(cell).sweep.search.num_samples == stage1
    assert last_stage_cell(cell).sweep.search.num_samples == last
    # A cell without a stage-1 search (or without the setting) keeps its whole budget.
    none = build_config(overrides={"train": {"mixture": "none"}, "sweep": {"search": {"num_samples": num_samples, "stage1": True}}})
    assert last_stage_cell(none).sweep.search.num_samples == num_samples


def test_a_stage1_search_needs_two_trials_to_split(tmp_path, monkeypatch):
    from fake2real.run.sweep import check_sweep

    monkeypatch.setenv("RAY_ADDRESS", "ray-head:6379")  # a cluster the job joins: sized once Ray is up, not here
    config = build_config(overrides={"output_dir": str(tmp_path), "sweep": {"search": {"num_samples": 1, "stage1": True}}})
    with pytest.raises(ConfigError) as error:
        check_sweep(config)
    assert str(error.value) == ("config: sweep.search.stage1 splits a cell's sweep.search.num_samples between its stage-1 search "
                                "and its own: it needs at least 2, got 1")
    # Without an FFR-like cell there is nothing to split.
    check_sweep(build_config(overrides={"output_dir": str(tmp_path), "sweep": {"mixtures": ["none"], "search": {"num_samples": 1, "stage1": True}}}))


def test_the_searches_a_sweep_runs_each_once_as_it_runs_them():
    """What the dry run counts and the run searches: one list, shared by key (search_plan.distinct_searches)."""
    from fake2real.run.search_plan import distinct_searches, search_key
    from fake2real.run.sweep_plan import search_cells

    config = build_config(overrides=["sweep.axes={dataset.shapes.semantic_gap: [0.0, 0.5]}", "sweep.mixtures=[none, ffr]",
                                     "sweep.methods=[erm, groupdro]", "sweep.search.num_samples=4", "sweep.search.stage1=true"])
    searches = distinct_searches(search_cells(config))
    kinds = sorted((s.train.mixture, s.train.method, s.sweep.search.num_samples) for s in searches)
    # none's searches are shared by the renderer's points; FFR's stage 1 by the methods of a point
    assert kinds == [("ffr", "erm", 2)] * 2 + [("ffr", "groupdro", 2)] * 2 + [("none", "erm", 4), ("none", "groupdro", 4)] \
        + [("synthetic_only", "erm", 2)] * 2
    assert len({search_key(s) for s in searches}) == len(searches)
    # An FFR-shaped mixture is one that pretrains on synthetic data alone, by its stages.
    assert {name for name in ("none", "usb", "asb", "ffr", "ffr_reversed", "synthetic_only", "ffr_biased")
            if get_mixture(name).pretrains_on_synthetic} == {"ffr", "ffr_biased"}
