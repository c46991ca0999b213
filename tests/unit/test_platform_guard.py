"""The source folder is called ``platform/`` and sits on sys.path (pytest ``pythonpath``,
``ray job submit --working-dir``): it must never shadow the stdlib ``platform`` module, and no
other folder on the path may shadow stdlib modules the package relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_repo_root_is_found():
    assert (REPO / "pyproject.toml").is_file()
    assert (REPO / "platform" / "fake2real" / "__init__.py").is_file()


def test_platform_folder_is_not_a_package():
    assert not (REPO / "platform" / "__init__.py").exists(), (
        "platform/__init__.py makes the source folder shadow the stdlib 'platform' module"
    )


def test_stdlib_platform_module_is_the_one_imported():
    import platform

    assert platform.system()  # e.g. "Linux"
    location = Path(platform.__file__).resolve()
    assert REPO not in location.parents, f"'platform' resolves to {location}, inside the repo"
    assert location.name == "platform.py"


def test_stdlib_platform_wins_with_repo_root_first_on_path():
    # `python -c` puts the cwd first on sys.path, as `python jobs/x.py` run from the root does
    # for jobs/; with the repo root first a stray platform/__init__.py would win.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "platform")]))
    out = subprocess.run(
        [sys.executable, "-c", "import platform; platform.system(); print(platform.__file__)"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert REPO not in Path(out).resolve().parents, out


def test_no_stdlib_shadowing_modules_in_jobs_or_tests():
    offenders = [
        p.relative_to(REPO)
        for folder in ("jobs", "tests")
        for p in (REPO / folder).rglob("*.py")
        if p.name in {"platform.py", "uuid.py"}
    ]
    assert offenders == []


def test_platform_folder_holds_no_top_level_modules():
    # platform/ is itself on sys.path, so a platform/uuid.py (say) would shadow the stdlib.
    modules = sorted(p.name for p in (REPO / "platform").glob("*.py"))
    assert modules == []
