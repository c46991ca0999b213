"""The generator backends, by name (``generation.backend``): what each is, ``generate/base.py``.

A new backend is its own file here and one entry in ``BACKENDS``: its section joins the config
as ``generation.<name>`` (``sections.py``), and everything else asks it.
"""

from __future__ import annotations

from fake2real.errors import ConfigError
from fake2real.generate.base import Backend, GeneratorBackend
from fake2real.generate.diffusers_backend import DiffusersBackend
from fake2real.generate.folder import FolderImport
from fake2real.generate.group_diffusion import GroupDiffusionBackend
from fake2real.generate.procedural import ProceduralBackend

BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend for backend in (ProceduralBackend, DiffusersBackend, GroupDiffusionBackend, FolderImport)
}


def unknown_backend(name: str) -> str:
    return f"generation.backend: unknown backend '{name}' (known: {', '.join(sorted(BACKENDS))})"


def get_backend(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ConfigError(f"config: {unknown_backend(name)}")
    return BACKENDS[name]


def backend_of(config) -> type[Backend]:
    """The backend ``config.generation.backend`` names."""
    return get_backend(config.generation.backend)


def settings_of(config):
    """The chosen backend's own section, ``generation.<backend>``: what the backend receives."""
    return getattr(config.generation, config.generation.backend)


def make_generator(name: str, settings: dict) -> GeneratorBackend:
    """A generation actor's backend, built from its settings (``Backend.identity``)."""
    backend = get_backend(name)
    if not issubclass(backend, GeneratorBackend):
        raise ConfigError(f"config: generation.backend: '{name}' imports images; it makes none")
    return backend(settings)
