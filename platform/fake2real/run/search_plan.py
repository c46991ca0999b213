"""What a sweep's searches are, without running one: each cell's search space and defaults, the
key that names a search (and so which cells share it), its seed, its share of trials, and the
cells FFR's stage-1 search adds. The search (``search.py``) runs these; the dry run
(``sweep_plan.py``) counts them: one source for both, and no Ray or torch imported to plan.
"""

from __future__ import annotations

import json

from fake2real import identity
from fake2real.config import ExperimentConfig, merge
from fake2real.errors import ConfigError
from fake2real.seeding import stable_seed
from fake2real.train.methods import get_method
from fake2real.train.mixtures import get_mixture

# The cell whose search stands for FFR's stage 1: ERM on FFR's synthetic data alone trains the
# same stage, by hash, as FFR's first (train/mixtures.py).
STAGE1_SEARCH_CELL = ("synthetic_only", "erm")


def _trained_method(config: ExperimentConfig) -> str:
    """The method the searched (last) stage trains."""
    return get_mixture(config.train.mixture).stages[-1].method_for(config.train.method)


def _last_stage_section(config: ExperimentConfig) -> str:
    return get_mixture(config.train.mixture).stages[-1].hparams_section


def declared_space(config: ExperimentConfig) -> tuple[dict, dict]:
    """(the space as declared distributions, the configured defaults as one point): ``lr``,
    ``weight_decay``, ``epochs`` and ``method.<name>`` for each hyperparameter the trained method declares."""
    search = config.sweep.search
    stage = getattr(config.train, _last_stage_section(config))
    if search.min_epochs > stage.epochs:
        raise ConfigError(f"config: sweep.search.min_epochs ({search.min_epochs}) exceeds the stage's epochs ({stage.epochs})")
    lr = lr_range(config)
    space = {
        "lr": lr,
        "weight_decay": search.weight_decay,
        "epochs": ("int", search.min_epochs, stage.epochs),
    }
    defaults = {"lr": stage.lr, "weight_decay": stage.weight_decay, "epochs": stage.epochs}
    from_previous = get_mixture(config.train.mixture).stages[-1].init_from_previous
    if search.freeze_bn and from_previous:
        space["freeze_bn"] = ("choice", [False, True])
        defaults["freeze_bn"] = stage.freeze_bn
    if search.head_warmup and from_previous:
        space["head_warmup_epochs"] = ("choice", list(HEAD_WARMUP_EPOCHS))
        defaults["head_warmup_epochs"] = stage.head_warmup_epochs
    method = get_method(_trained_method(config))
    configured = config.train.method_params.get(method.name, {})
    for hp in method.hyperparameters:
        space[f"method.{hp.name}"] = hp.distribution
        defaults[f"method.{hp.name}"] = configured.get(hp.name, hp.default)
    # Optuna's log-uniform needs the default inside (0, ∞): a configured weight decay of 0 is
    # outside the searched range, so the defaults point is clipped into it.
    for name, (_kind, low, high) in (("lr", lr), ("weight_decay", search.weight_decay)):
        defaults[name] = min(max(defaults[name], low), high)
    return space, defaults


# LP-FT's searched choices: the head alone for this many of the stage's first epochs.
HEAD_WARMUP_EPOCHS = (0, 1, 2)
# A stage that starts from a previous stage's model is searched down to its lr / LR_REACH: the
# gentle fine-tuning that rescued FFR with GroupDRO at r = 0.999 (docs/results/searched.md).
LR_REACH = 100.0


def lr_range(config: ExperimentConfig) -> tuple[str, float, float]:
    """``sweep.search.lr``, its low end reaching a hundredth of the stage's configured lr for a stage
    that starts from a previous one."""
    kind, low, high = config.sweep.search.lr
    if get_mixture(config.train.mixture).stages[-1].init_from_previous:
        low = min(low, getattr(config.train, _last_stage_section(config)).lr / LR_REACH)
    return kind, low, high


def apply(config: ExperimentConfig, params: dict) -> ExperimentConfig:
    """The cell's config with a trial's hyperparameters in place."""
    section = _last_stage_section(config)
    method = _trained_method(config)
    hparams = {"lr": float(params["lr"]), "weight_decay": float(params["weight_decay"]), "epochs": int(params["epochs"])}
    if "freeze_bn" in params:
        hparams["freeze_bn"] = bool(params["freeze_bn"])
    if "head_warmup_epochs" in params:
        hparams["head_warmup_epochs"] = int(params["head_warmup_epochs"])
    update = {
        "train": {
            section: hparams,
            "method_params": {method: {k.removeprefix("method."): v for k, v in params.items() if k.startswith("method.")}},
        }
    }
    return ExperimentConfig.model_validate(merge(config.model_dump(), update))


def cell_key(config: ExperimentConfig) -> str:
    """What the search's outcome depends on: the cell, the search settings (not how many trials
    run at once) and the searched method's declared space (it lives in code)."""
    settings = config.sweep.search.model_dump(mode="json", exclude={"max_concurrent_trials"})
    declared = [(hp.name, hp.default, list(hp.distribution)) for hp in get_method(_trained_method(config)).hyperparameters]
    extra = json.dumps([settings, declared], sort_keys=True, default=list)
    return identity.key(f"{config.digest('dataset', 'generation', 'train', 'seed')}|{extra}")


def search_key(config: ExperimentConfig) -> str:
    """The key of the cell's search (its Tune experiment and done marker): ``cell_key``, without
    the synthetic renderer's knobs for a mixture trained on real data alone, so the points of a
    sweep over those knobs share one search (its trials' runs stay under the first point's cell)."""
    if get_mixture(config.train.mixture).needs_synthetic:
        return cell_key(config)
    return cell_key(config.real_data_only())


def search_seed(config: ExperimentConfig, key: str) -> int:
    """TPE's seed for the search ``key``: ``sweep.search.seed`` and the key, so cells with the
    same space try different configurations after the defaults (a decision: docs/design.md §5)."""
    return stable_seed(config.sweep.search.seed, key) % 2**32  # Optuna's samplers take 32 bits


def stage1_trials(num_samples: int) -> int:
    """A stage-1 search's share of its cell's ``num_samples``: half, rounded down; the cell's
    own search gets the rest, so an FFR cell tries as many configurations as any other cell."""
    return num_samples // 2


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    return ExperimentConfig.model_validate(merge(config.model_dump(), {"seed": seed}))


def searches_stage1(config: ExperimentConfig) -> bool:
    """Whether the cell's stage 1 is searched first: ``sweep.search.stage1`` and a mixture that
    pretrains on synthetic data (FFR and its ablations, ``Mixture.pretrains_on_synthetic``)."""
    return config.sweep.search.stage1 and get_mixture(config.train.mixture).pretrains_on_synthetic


def stage1_cell(config: ExperimentConfig) -> ExperimentConfig:
    """The search of FFR's stage 1: the cell ``synthetic_only``/``erm`` (the same stage, by hash)
    on FFR's synthetic data, with its share of the cell's trials; an ablation of FFR keeps the
    hyperparameters selected for FFR."""
    trials = stage1_trials(config.sweep.search.num_samples)
    mixture, method = STAGE1_SEARCH_CELL
    return ExperimentConfig.model_validate(merge(config.model_dump(), {"train": {"mixture": mixture, "method": method},
                                                                       "sweep": {"search": {"num_samples": trials}}}))


def last_stage_cell(config: ExperimentConfig) -> ExperimentConfig:
    """The cell as its own search runs: with a stage-1 search, the trials that search leaves."""
    if not searches_stage1(config):
        return config
    left = config.sweep.search.num_samples - stage1_trials(config.sweep.search.num_samples)
    return ExperimentConfig.model_validate(merge(config.model_dump(), {"sweep": {"search": {"num_samples": left}}}))


def distinct_searches(cells: list[ExperimentConfig]) -> list[ExperimentConfig]:
    """The searches that ``cells`` (search cells, at their first seed) run, each once and as it
    runs (with its own share of trials): a cell's own search, and a stage-1 search that every
    method of its (dataset, r) shares; cells with one key (a real-data-only cell at every point
    of the renderer's knobs) share one search."""
    unique: dict[str, ExperimentConfig] = {}
    for cell in cells:  # the first cell of a key searches, as in the run; the others find its result
        unique.setdefault(search_key(cell), cell)
    searches = {key: last_stage_cell(cell) for key, cell in unique.items()}
    for cell in unique.values():
        if searches_stage1(cell):
            stage1 = stage1_cell(cell)
            searches.setdefault(search_key(stage1), stage1)
    return list(searches.values())
