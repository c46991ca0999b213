"""From a config to a synthetic table: counts per group, the prompt plan, the generation job.

Counts come from ``generation.images_per_group`` or from the mixture's rule applied to a real
table's train group counts (the ``biased`` rule splits ``images_per_group``, when set, by the real
table's group shares too). Prompts come from a template (``generation.prompts``) or, for the
built-in benchmark, from the dataset itself.

A table is made for one plan: ``generation.output`` holding a table of another plan is refused,
and ``check_sweep_generation`` refuses the settings that would make a sweep's mixtures share one.
"""

from __future__ import annotations

import ray

from fake2real.config import ExperimentConfig
from fake2real.data.datasets import get_dataset
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, check_writable, group_name, is_complete, read_info
from fake2real.errors import ConfigError
from fake2real.generate.filters import make_filters
from fake2real.generate.job import run_generation
from fake2real.generate.plan import build_plan, describe
from fake2real.generate.prompts import load_template
from fake2real.runtime import init_ray
from fake2real.train.mixtures import Mixture, biased_counts, get_mixture, synthetic_counts
from fake2real.workspace import Workspace, prepare_real


def needs_generation(config: ExperimentConfig, mixtures: list[str]) -> bool:
    """Whether any of these mixtures trains on synthetic data, or runs get a synthetic test set."""
    return config.generation.test_images_per_group > 0 or any(get_mixture(m).needs_synthetic for m in mixtures)


def check_generation(config: ExperimentConfig) -> None:
    """Driver-side checks of the generation settings, before any Ray work."""
    gen = config.generation
    make_filters(gen.filters)
    if gen.backend == "procedural" and config.dataset.name != "shapes":
        raise ConfigError(
            "config: generation.backend: 'procedural' renders only the built-in shapes world; synthetic data for "
            f"'{config.dataset.name}' needs generation.backend=diffusers and generation.model (or train.mixture=none "
            "and generation.test_images_per_group=0)"
        )
    if gen.prompts:
        load_template(gen.prompts)
    elif not hasattr(get_dataset(config.dataset.name), "prompt"):
        raise ConfigError(f"config: generation.prompts is required for dataset '{config.dataset.name}' (a built-in template name or a YAML path)")
    if gen.backend == "diffusers":
        import diffusers
        from diffusers import DiffusionPipeline

        try:
            DiffusionPipeline.load_config(gen.model, revision=gen.revision, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"config: generation.model: no diffusers pipeline at '{gen.model}' (a local directory with "
                f"model_index.json, or a model id already in the local Hugging Face cache): {str(exc).splitlines()[0][:150]}"
            ) from None
        scheduler = getattr(diffusers, gen.scheduler, None) if gen.scheduler else None
        if gen.scheduler and not (isinstance(scheduler, type) and issubclass(scheduler, diffusers.SchedulerMixin)):
            raise ConfigError(f"config: generation.scheduler: unknown scheduler '{gen.scheduler}' (a diffusers scheduler class, e.g. DDIMScheduler)")


def check_sweep_generation(config: ExperimentConfig, mixtures: list[str], bias_ratios: list[float]) -> None:
    """Refuse the generation options that would give one mixture of a sweep another's synthetic data.

    ``generation.counts_from`` gives every mixture one budget: refused when a synthetic mixture of
    the sweep has another count rule. ``generation.output`` is one folder, so one plan: refused
    when the sweep's synthetic mixtures need more than one — several budgets (count rules, unless
    ``images_per_group`` fixes the counts; the ``biased`` rule still shares it by the real
    groups), several bias ratios whose counts come from each ratio's real table (a fixed
    ``generation.real_table`` serves every ratio), or several variants of the images (bias words
    on / off, degraded or not).
    """
    gen = config.generation
    synthetic = [get_mixture(name) for name in dict.fromkeys(mixtures) if get_mixture(name).needs_synthetic]
    if gen.counts_from is not None:
        other = [m for m in synthetic if m.count_rule != gen.counts_from]
        if other:
            raise ConfigError(
                f"config: generation.counts_from={gen.counts_from} would give mixture '{other[0].name}' the "
                f"'{gen.counts_from}' budget instead of its own '{other[0].count_rule}'; unset it for a sweep"
            )
    if gen.output is None or not synthetic:
        return

    def budget(mixture: Mixture) -> str:
        rule = gen.counts_from or mixture.count_rule
        return "images_per_group" if gen.images_per_group is not None and rule != "biased" else rule

    reasons = []
    budgets = sorted({budget(m) for m in synthetic})
    # asb and ffr give every group the same N // n_groups: one plan, one table.
    if len({"ffr" if b == "asb" else b for b in budgets}) > 1:
        reasons.append(f"budgets {', '.join(budgets)}")
    ratios = sorted(set(bias_ratios))
    if gen.real_table is None and len(ratios) > 1 and budgets != ["images_per_group"]:
        reasons.append(f"bias ratios {', '.join(map(str, ratios))}")
    if len({(gen.bias_words and m.bias_words, m.degrade) for m in synthetic}) > 1:
        reasons.append("images with and without bias words or degradation")
    if reasons:
        raise ConfigError(
            f"config: generation.output: one folder holds one synthetic plan, but this sweep's mixtures "
            f"({', '.join(m.name for m in synthetic)}) need several ({'; '.join(reasons)}); unset it for a sweep"
        )


def _backend_kwargs(config: ExperimentConfig) -> dict:
    gen = config.generation
    if gen.backend == "procedural":
        return {"world": config.dataset.shapes.model_dump()}
    names = ("model", "revision", "dtype", "device", "scheduler", "steps", "guidance", "negative_prompt", "resolution",
             "safety_checker", "compile", "channels_last", "vae_slicing")
    return {name: getattr(gen, name) for name in names}


def synthetic_plan(config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None = None, test: bool = False):
    """``(plan_id, plan, info)``: the rows to generate and the table metadata they will carry.

    ``mixture``: whose budget and generation changes (no bias words, degraded images) apply
    (default: ``train.mixture``'s). ``test``: the held-out synthetic test set instead —
    ``generation.test_images_per_group`` per group, bias words on, never degraded, the same for
    every mixture so their synthetic-test metrics compare.
    """
    gen = config.generation
    mixture = mixture or get_mixture(config.train.mixture)
    bias_words = True if test else gen.bias_words and mixture.bias_words
    degradation = gen.ablation_degradation.model_dump() if mixture.degrade and not test else None
    template = load_template(gen.prompts) if gen.prompts else None
    rule = gen.counts_from or mixture.count_rule
    # The biased rule shares images_per_group too by the real groups' shares: it needs the real table.
    fixed = gen.images_per_group is not None and rule != "biased"
    real = None
    if (not fixed and not test) or template is None:
        real = Location(gen.real_table) if gen.real_table else prepare_real(config, workspace)
        real_info = read_info(real)
    bias_fn = None
    if template is not None:
        class_names, bias_names, groups = template.class_names, template.bias_names, template.all_groups()
        prompt = lambda y, b, seed: template.prompt(y, b, seed, bias_words)  # noqa: E731
    else:
        dataset = get_dataset(config.dataset.name)
        class_names, bias_names = real_info.class_names, real_info.bias_names
        groups = [(y, b) for y in range(len(class_names)) for b in range(len(bias_names))]
        prompt = lambda y, b, seed: dataset.prompt(y, b, seed, bias_words)  # noqa: E731
        if not bias_words:
            world = config.dataset.shapes
            bias_fn = lambda y, b, seed: dataset.unprompted_bias(y, seed, world)  # noqa: E731
    if test:
        counts = {g: gen.test_images_per_group for g in groups}
    elif fixed:
        counts = {g: gen.images_per_group for g in groups}
    else:
        if rule is None:
            raise ConfigError(
                f"config: mixture '{mixture.name}' uses no synthetic data; set generation.images_per_group, "
                "generation.counts_from or another train.mixture"
            )
        if (len(real_info.class_names), len(real_info.bias_names)) != (len(class_names), len(bias_names)):
            raise ConfigError(
                f"config: generation.prompts: the template has {len(class_names)} classes × {len(bias_names)} bias values, "
                f"the real table {real} {len(real_info.class_names)} × {len(real_info.bias_names)}"
            )
        train = real_info.group_counts.get("train", {})
        real_counts = {g: train.get(group_name(*g), 0) for g in groups}
        if gen.images_per_group is None:
            counts = synthetic_counts(rule, real_counts)
        else:
            counts = biased_counts(gen.images_per_group, real_counts)
            if not counts:
                raise ConfigError(f"config: the 'biased' count rule shares generation.images_per_group by the real training groups; {real} has none")
    identity = {
        "dataset": config.dataset.name if template is None else template.name,
        "template": template.model_dump() if template else None,
        "bias_words": bias_words,
        "backend": gen.backend,
        "backend_kwargs": _backend_kwargs(config),
        "stored": [_image_format(config), gen.jpeg_quality, gen.output_size, gen.filters, gen.max_attempts],
    }
    if degradation:  # only then: the plan ids of undegraded tables stay what they were
        identity["degradation"] = degradation
    plan_id, plan = build_plan(counts, prompt, identity, split="test" if test else "train", bias_fn=bias_fn)
    extra = {"plan_id": plan_id, "backend": gen.backend, "bias_words": bias_words, "degradation": degradation}
    # Without bias words a text-to-image model picks B itself: the b column is then the group
    # requested, not what was drawn (the procedural world records what it drew).
    extra["bias_labels"] = "drawn" if bias_fn else ("requested" if not bias_words else "prompted")
    info = TableInfo(identity["dataset"], class_names, bias_names, "synthetic", extra=extra)
    return plan_id, plan, info


def _image_format(config: ExperimentConfig) -> str:
    gen = config.generation
    return gen.image_format or ("png" if gen.backend == "procedural" else "jpeg")


def _actors(config: ExperimentConfig) -> tuple[int, float]:
    """(max actors, GPUs per actor): by default one actor per GPU of the cluster."""
    gen = config.generation
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    gpus = gen.gpus_per_actor if gen.gpus_per_actor is not None else (1.0 if gen.backend == "diffusers" and cluster_gpus else 0.0)
    if gen.num_actors is not None:
        return gen.num_actors, gpus
    return (max(gen.min_actors, int(cluster_gpus // gpus)) if gpus else gen.min_actors), gpus


def prepare_synthetic(config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None = None, test: bool = False) -> Location:
    gen = config.generation
    plan_id, plan, info = synthetic_plan(config, workspace, mixture, test)
    if gen.output and not test:
        path = Location(gen.output)
    else:
        path = workspace.data / f"synthetic-{'test-' if test else ''}{info.dataset}-{plan_id}"
    if is_complete(path):
        stored = read_info(path).extra.get("plan_id")
        if gen.output and not test and stored != plan_id:
            # A table is made for one plan: another mixture's or ratio's budget is not this one's.
            raise ConfigError(
                f"config: generation.output: {path} holds the synthetic table of plan {stored}, not of plan {plan_id} "
                "that this run needs; choose another generation.output (or none: one folder per plan)"
            )
        return path
    max_actors, gpus = _actors(config)
    print(f"[generate] {plan.num_rows} images → {path} ({max_actors} actor(s), {gpus} GPU each)\n{describe(plan)}", flush=True)
    run_generation(
        plan, path, info, gen.backend, _backend_kwargs(config),
        image_format=_image_format(config), quality=gen.jpeg_quality, output_size=gen.output_size,
        filters=gen.filters, max_attempts=gen.max_attempts, degradation=info.extra["degradation"], batch_size=gen.batch_size,
        min_actors=min(gen.min_actors, max_actors), num_actors=max_actors,
        cpus_per_actor=gen.cpus_per_actor, gpus_per_actor=gpus,
    )
    return path


def run_generation_job(config: ExperimentConfig, dry_run: bool = False) -> str:
    """``jobs/generate.py``: the plan (dry run) or the finished synthetic table."""
    check_generation(config)
    workspace = Workspace.create(config)
    if config.generation.output:
        check_writable(Location(config.generation.output).parent)
    plan_id, plan, _ = synthetic_plan(config, workspace)
    if dry_run:
        return f"plan {plan_id}: {plan.num_rows} images\n{describe(plan)}"
    init_ray()
    path = prepare_synthetic(config, workspace)
    info = read_info(path)
    lines = [f"synthetic table: {path} ({info.num_rows} rows, {info.extra.get('rejections', 0)} rejections)"]
    return "\n".join(lines + [f"  {k}: {v}" for k, v in info.group_counts["train"].items()])
