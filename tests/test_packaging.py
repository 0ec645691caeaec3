"""pyproject.toml, environment.yml and binder/ agree on dependencies."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dev dependency there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda names that differ from PyPI names
CONDA_TO_PYPI = {"pytorch-cpu": "torch", "pytorch": "torch"}
NOT_RUNTIME = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pyproject_names() -> set[str]:
    """The runtime dependencies: what a notebook kernel (e.g. Colab's) needs."""
    return {_name(r) for r in _project()["dependencies"]}


def extra_names(extra: str) -> set[str]:
    return {_name(r) for r in _project()["optional-dependencies"][extra]}


def conda_names(path: Path) -> set[str]:
    lines = path.read_text().split("dependencies:", 1)[1].splitlines()
    names = {_name(line.strip()[2:]) for line in lines if line.strip().startswith("- ")}
    return {CONDA_TO_PYPI.get(n, n) for n in names} - NOT_RUNTIME


def test_environment_yml_matches_pyproject():
    # The conda environment is for working in the lab and running the notebooks as tests.
    expected = pyproject_names() | extra_names("lab") | {"nbval"}
    assert conda_names(ROOT / "environment.yml") == expected


def test_binder_environment_is_identical_to_root():
    assert (ROOT / "binder/environment.yml").read_text() == (ROOT / "environment.yml").read_text()


def test_binder_post_build_installs_the_package():
    assert "pip install" in (ROOT / "binder/postBuild").read_text()


def test_required_dependencies_are_listed():
    required = {"torch", "transformers", "datasets", "ipywidgets", "matplotlib", "seaborn",
                "safetensors", "huggingface-hub", "tqdm", "pandas"}
    assert required <= pyproject_names()


def test_runtime_install_is_slim():
    """Colab installs the runtime dependencies: no lab or test tools among them."""
    assert not pyproject_names() & {"jupyterlab", "nbval", "pytest", "ruff", "playwright"}
    assert {"jupyterlab"} <= extra_names("lab")
    assert {"nbval", "pytest"} <= extra_names("dev")


def test_license_is_an_spdx_string():
    """A TOML table here is deprecated by setuptools and warns at every install."""
    assert _project()["license"] == "MIT"
