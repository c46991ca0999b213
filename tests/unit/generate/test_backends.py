"""Generator backends: the registry drives the config (each backend's section, the backend name,
moved keys named in one line), and stored pool ids and job digests stay what they were before
the settings moved into ``generation.<backend>`` (pinned: a changed id orphans stored pools)."""

from __future__ import annotations

import pytest

from fake2real.config import MOVED, build_config
from fake2real.data.storage import Location
from fake2real.errors import ConfigError
from fake2real.generate.backends import BACKENDS, backend_of
from fake2real.prepare.pool_sources import GeneratedPool, ImportedPool, pool_source
from fake2real.prepare.synthetic import synthetic_pool
from fake2real.train.mixtures import get_mixture
from fake2real.prepare.workspace import Workspace

DIFFUSERS = ["generation.backend=diffusers", "generation.diffusers.model=/x"]
FOLDER = ["generation.backend=folder", "generation.folder.root=gen"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A folder to import, at a relative root (the root is part of its pool's identity)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "metadata.csv").write_text("path,class,bias\na.png,0,0\nb.png,0,1\nc.png,1,0\nd.png,1,1\n")
    return Workspace(Location(str(tmp_path / "out")))


def pool_id(workspace, *overrides, mixture=None, test=False):
    config = build_config(overrides=["output_dir=out", *overrides])
    return synthetic_pool(config, workspace, get_mixture(mixture) if mixture else None, test).id


def test_stored_pool_ids_did_not_change(here):
    # Computed before the diffusers settings moved from generation.<key> to generation.diffusers.<key>.
    assert pool_id(here) == "9698af73e97d8b17"
    assert pool_id(here, test=True) == "15b624d3dd121c8c"
    assert pool_id(here, mixture="ffr_degraded") == "75bb51168caa376f"
    assert pool_id(here, *DIFFUSERS) == "d186629c3338581f"
    assert pool_id(here, *DIFFUSERS, test=True) == "5818a611a3e4d1d5"
    steps = ["generation.diffusers.steps=50", "generation.prompts=celeba"]
    assert pool_id(here, *DIFFUSERS, *steps, mixture="ffr_degraded") == "9a0f2f87ffa4eb94"
    assert pool_id(here, *FOLDER) == "083bce7aaf8fe56f"
    assert pool_id(here, *FOLDER, test=True) == "f4ecafc10dd3fdc0"


def test_job_digests_did_not_change(here):
    def digests(*overrides):
        config = build_config(overrides=["output_dir=out", *overrides])
        return config.digest(), config.digest("dataset", "generation", "train", "seed")

    assert digests() == ("29e6bd22e159e6fc", "ede7ac945ad11cba")
    assert digests(*DIFFUSERS) == ("120a0105bef740a8", "f2a30045fd4f21ed")
    assert digests(*DIFFUSERS, "generation.diffusers.steps=50", "generation.prompts=celeba") == ("c25c6d574a929d69", "5da450a0ee940fac")
    assert digests(*FOLDER) == ("3092525525b9ada3", "ed4eb2586194bcfe")
    assert digests("generation.diffusers.steps=50") != digests()  # a moved key still counts where it was set


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_key_names_its_new_place(old):
    with pytest.raises(ConfigError, match=rf"^config: {old} moved to generation\.diffusers\.{old.split('.')[1]}$"):
        build_config(overrides=[f"{old}=1"])
    with pytest.raises(ConfigError, match=rf"^config: {old} moved to "):
        build_config(overrides={"generation": {"backend": "diffusers", old.split(".")[1]: 1}})


def test_every_backend_has_its_section_and_the_name_is_checked():
    config = build_config()
    for name, backend in BACKENDS.items():
        assert getattr(config.generation, name) == backend.Settings()
    with pytest.raises(ConfigError, match=r"^config: generation.backend: unknown backend 'sd' \(known: diffusers, folder, group_diffusion, procedural\)$"):
        build_config(overrides=["generation.backend=sd"])
    with pytest.raises(ConfigError, match=r"^config: generation.diffusers.model is required for the diffusers backend$"):
        build_config(overrides=["generation.backend=diffusers"])
    with pytest.raises(ConfigError, match=r"^config: generation.folder.root is required for the folder backend"):
        build_config(overrides=["generation.backend=folder"])
    with pytest.raises(ConfigError, match=r"^config: unknown key 'generation.procedural.world'$"):
        build_config(overrides=["generation.procedural.world=1"])


def test_what_each_backend_says_of_itself():
    def backend(*overrides):
        return backend_of(build_config(overrides=list(overrides)))

    procedural, diffusers, folder = backend(), backend(*DIFFUSERS), backend("generation.backend=folder", "generation.folder.root=/g")
    assert (procedural.image_format, procedural.uses_gpu) == ("png", False)
    assert (diffusers.image_format, diffusers.uses_gpu) == ("jpeg", True)
    assert not folder.uses_gpu
    # The pool class follows the kind of backend: generated and grown, or imported once.
    kinds = [pool_source(build_config(overrides=list(o))) for o in ([], DIFFUSERS, ["generation.backend=folder", "generation.folder.root=/g"])]
    assert kinds == [GeneratedPool, GeneratedPool, ImportedPool]
    # A backend receives its own section (and the dataset section), never the whole config.
    config = build_config(overrides=DIFFUSERS)
    assert diffusers.identity(config.generation.diffusers, config.dataset) == config.generation.diffusers.model_dump()
    default = build_config()
    assert procedural.identity(default.generation.procedural, default.dataset) == {"world": default.dataset.shapes.model_dump()}


def test_a_backend_lives_in_its_own_file():
    """Adding a generator touches its file and the registry: no other module names a backend
    class or branches on a backend's name (docs/design.md §3; the folder import proves it)."""
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[3] / "platform" / "fake2real"
    own = {package / "generate" / "backends.py"} | {
        package / "generate" / f"{module}.py" for module in ("procedural", "diffusers_backend", "folder", "group_diffusion")}
    classes = "|".join(backend.__name__ for backend in BACKENDS.values())
    pattern = re.compile(rf"\b({classes})\b|backend\s*[!=]=|[!=]=\s*['\"]({'|'.join(BACKENDS)})['\"]\s*$")
    found = [f"{path.relative_to(package)}:{number}: {line.strip()}" for path in sorted(package.rglob("*.py")) if path not in own
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line) and "dataset" not in line]
    assert not found, "\n".join(found)


def test_only_the_pool_sources_ask_which_kind_a_backend_is():
    """Generated or imported is asked in one place, ``prepare/pool_sources.py``: everything else
    calls the pool (no ``.imports`` switch, no ``isinstance`` of a pool or backend kind)."""
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[3] / "platform" / "fake2real"
    own = {package / "prepare" / "pool_sources.py", package / "generate" / "base.py", package / "generate" / "backends.py"} | {
        package / "generate" / f"{module}.py" for module in ("procedural", "diffusers_backend", "folder", "group_diffusion")}
    pattern = re.compile(r"\b(ImportBackend|GeneratorBackend|ImportedPool|GeneratedPool)\b|\.imports\b|\.prompt is (not )?None")
    found = [f"{path.relative_to(package)}:{number}: {line.strip()}" for path in sorted(package.rglob("*.py")) if path not in own
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)
