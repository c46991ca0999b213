"""Prompt templates: one sentence pattern, phrase lists per class and per bias value.

A template file (YAML) names the classes and bias values, a ``template`` with ``{class}`` and
``{bias}`` placeholders, optional ``no_bias_template`` (the reviewers' "no bias words" ablation)
and the phrase lists; each image draws one phrase per placeholder with its own seed. Built-in
templates live beside this file (``celeba``, ``utkface``, ``spuco_animals``); any path works too.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from fake2real.yaml_file import load_yaml_file
from fake2real.errors import ConfigError

PLACEHOLDERS = {"class", "bias"}


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    class_names: list[str]
    bias_names: list[str]
    template: str
    no_bias_template: str | None = None
    class_phrases: list[list[str]]
    bias_phrases: list[list[str]]
    # (class, bias) groups that exist; default: every combination.
    groups: list[tuple[int, int]] | None = None

    @model_validator(mode="after")
    def _check(self) -> "PromptTemplate":
        for field in ("template", "no_bias_template"):
            text = getattr(self, field)
            if text is None:
                continue
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            unknown = sorted(names - PLACEHOLDERS)
            if unknown:
                raise ValueError(f"{field} placeholder {{{unknown[0]}}} is not filled by any group (known: {{class}}, {{bias}})")
        if len(self.class_phrases) != len(self.class_names):
            raise ValueError(f"class_phrases has {len(self.class_phrases)} lists for {len(self.class_names)} classes")
        if len(self.bias_phrases) != len(self.bias_names):
            raise ValueError(f"bias_phrases has {len(self.bias_phrases)} lists for {len(self.bias_names)} bias values")
        for kind, lists in (("class_phrases", self.class_phrases), ("bias_phrases", self.bias_phrases)):
            for index, phrases in enumerate(lists):
                if not phrases:
                    raise ValueError(f"{kind}[{index}] is empty")
        for y, b in self.all_groups():
            if not (0 <= y < len(self.class_names) and 0 <= b < len(self.bias_names)):
                raise ValueError(f"group ({y}, {b}) is outside {len(self.class_names)} classes × {len(self.bias_names)} bias values")
        return self

    def all_groups(self) -> list[tuple[int, int]]:
        if self.groups is not None:
            return [tuple(g) for g in self.groups]
        return [(y, b) for y in range(len(self.class_names)) for b in range(len(self.bias_names))]

    def prompt(self, y: int, b: int, seed: int, bias_words: bool = True) -> str:
        """The prompt of one image: phrases drawn with the image's seed."""
        if not bias_words and self.no_bias_template is None:
            raise ConfigError(f"prompts: template '{self.name}' has no no_bias_template for the no-bias-words ablation")
        rng = np.random.default_rng(seed)
        phrase_class = self.class_phrases[y][rng.integers(len(self.class_phrases[y]))]
        phrase_bias = self.bias_phrases[b][rng.integers(len(self.bias_phrases[b]))]
        text = self.template if bias_words else self.no_bias_template
        return text.format(**{"class": phrase_class, "bias": phrase_bias})


def builtin_templates() -> list[str]:
    folder = resources.files("fake2real.generate") / "prompts"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_template(name_or_path: str) -> PromptTemplate:
    """A built-in template by name, or a YAML file by path; errors name the file and field."""
    path = Path(name_or_path)
    if not path.suffix:
        if name_or_path not in builtin_templates():
            raise ConfigError(f"prompts: unknown template '{name_or_path}' (built-in: {', '.join(builtin_templates())}; or give a .yaml path)")
        with resources.as_file(resources.files("fake2real.generate") / "prompts" / f"{name_or_path}.yaml") as builtin:
            data = load_yaml_file(builtin, f"generation.prompts: {name_or_path}")
    elif not path.is_file():
        raise ConfigError(f"prompts: template file not found: {path}")
    else:
        data = load_yaml_file(path, f"generation.prompts: {path}")
    try:
        return PromptTemplate.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"prompts {name_or_path}: {where + ': ' if where else ''}{message}") from None
