"""scripts/common.sh's ensure_venv: one stamp per requirements file, over the
file and what it includes, so `bash bench/run.sh` after `make run` installs the
benchmarks' packages (issue 10: it reused requirements.txt's stamp and failed
with "No module named 'pybreaker'")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def make_wheel(folder: Path, name: str) -> Path:
    """A minimal pure-Python wheel: pip installs it from the file, no index needed."""
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": f"NAME = {name!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: calliq-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project laid out like CallIQ's: requirements.txt, and bench/requirements.txt including it."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "common.sh", tmp_path / "scripts" / "common.sh")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("alpha", "beta", "gamma"):
        make_wheel(wheels, name)
    (tmp_path / "requirements.txt").write_text(f"alpha @ {(wheels / 'alpha-1.0-py3-none-any.whl').as_uri()}\n")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "requirements.txt").write_text(
        f"-r ../requirements.txt\nbeta @ {(wheels / 'beta-1.0-py3-none-any.whl').as_uri()}\n"
    )
    return tmp_path


def ensure_venv(project: Path, requirements: str) -> str:
    # No package index: the wheels are local files, and pip's self-upgrade finds nothing newer.
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        ["bash", "-c", f"source scripts/common.sh && ensure_venv {requirements}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def importable(project: Path, module: str) -> bool:
    result = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", f"import {module}"], check=False)
    return result.returncode == 0


def test_each_requirements_file_has_its_own_stamp_over_what_it_includes(project):
    first = ensure_venv(project, "requirements.txt")
    assert "Installing Python packages from requirements.txt" in first
    assert importable(project, "alpha")
    assert not importable(project, "beta")

    # `make run` then `bash bench/run.sh`: the benchmarks' file is installed too.
    bench = ensure_venv(project, "bench/requirements.txt")
    assert "Installing Python packages from bench/requirements.txt" in bench
    assert importable(project, "beta")

    # Nothing changed: no install, for either file.
    assert "Installing" not in ensure_venv(project, "bench/requirements.txt")
    assert "Installing" not in ensure_venv(project, "requirements.txt")

    # A change to the included file reaches the file that includes it.
    gamma = (project / "wheels" / "gamma-1.0-py3-none-any.whl").as_uri()
    with (project / "requirements.txt").open("a") as requirements:
        requirements.write(f"gamma @ {gamma}\n")
    assert "Installing Python packages from bench/requirements.txt" in ensure_venv(project, "bench/requirements.txt")
    assert importable(project, "gamma")
    assert sorted(path.name for path in (project / ".venv").glob(".installed-*")) == [
        ".installed-bench_requirements.txt",
        ".installed-requirements.txt",
    ]


def ensure_node_packages(project: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", "source scripts/common.sh && ensure_node_packages"],
        cwd=project,
        env={**os.environ, "PATH": path, "npm_config_offline": "true"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_node_packages_install_once_per_package_json_and_a_missing_npm_is_named(project):
    npm = shutil.which("npm")
    assert npm is not None, "the test needs npm (Debian: apt-get install npm)"
    # No package.json: nothing to do, npm or not.
    assert ensure_node_packages(project, "/nonexistent").returncode == 0

    (project / "package.json").write_text('{"name": "calliq-test", "version": "1.0.0", "private": true}\n')
    missing = ensure_node_packages(project, "/nonexistent")
    assert missing.returncode == 1
    assert "package.json needs Node.js and npm" in missing.stderr
    assert "apt-get install nodejs npm" in missing.stderr

    path = os.pathsep.join([str(Path(npm).parent), "/usr/bin", "/bin"])
    first = ensure_node_packages(project, path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Installing node packages from package.json" in first.stdout
    assert (project / "node_modules" / ".calliq-installed").exists()
    again = ensure_node_packages(project, path)
    assert again.returncode == 0
    assert "Installing" not in again.stdout
