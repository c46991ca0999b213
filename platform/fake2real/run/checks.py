"""What a job checks once, before any work: names, settings and files of its experiments
(``check_experiments``, before Ray starts) and what the cluster can give (``check_cluster``,
once Ray is up). A sweep calls each once for all its cells, never once per experiment.
"""

from __future__ import annotations

from fake2real.config import ExperimentConfig
from fake2real.errors import ConfigError
from fake2real.runtime import check_tracking_for_cluster, require_resources
from fake2real.prepare.synthetic import check_generation, needs_generation
from fake2real.train.methods import get_method, resolve_params
from fake2real.train.mixtures import get_mixture
from fake2real.train.spec import Resources


def check_experiments(config: ExperimentConfig, mixtures: list[str], methods: list[str]) -> None:
    """Checks of the experiments (these mixtures × methods) that must fail before any Ray work."""
    for name in methods:
        resolve_params(get_method(name), config.train.method_params.get(name, {}))
    if needs_generation(config, mixtures):
        check_generation(config)
    if config.train.pretrained_file:  # the file exists, is a state dict, and fits the backbone
        from fake2real.train.models import build_model  # torch: only for a file to check

        build_model(config.train.model, 2, config.train.pretrained_file)
    for name in mixtures:
        _check_group_labels(config, name, methods)


def _check_group_labels(config: ExperimentConfig, mixture_name: str, methods: list[str]) -> None:
    """A text-to-image model told no bias words picks B itself: its images have no group labels,
    so no stage trained on them may use a method that needs groups."""
    gen, mixture = config.generation, get_mixture(mixture_name)
    if gen.prompts is None or (gen.bias_words and mixture.bias_words):
        return
    for stage in mixture.stages:
        for method in methods:
            trained = stage.method_for(method)
            if stage.data != "real" and get_method(trained).uses_groups:
                raise ConfigError(
                    f"config: method '{trained}' needs group labels, but mixture '{mixture_name}' trains its "
                    f"'{stage.name}' stage on images generated without bias words (their bias is unknown)"
                )


def check_cluster(config: ExperimentConfig, tracking_uri: str) -> None:
    """Once Ray is up, before any stage: what this cluster can never give is refused in one line."""
    resources = Resources.of(config.train)
    require_resources(resources.bundle(), resources.num_workers, resources.describe(), config.train.resource_wait_s)
    check_tracking_for_cluster(tracking_uri)
