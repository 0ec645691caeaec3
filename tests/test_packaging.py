"""pyproject.toml, environment.yml and binder/ agree on dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda names that differ from PyPI names
CONDA_TO_PYPI = {"pytorch-cpu": "torch", "pytorch": "torch"}
NOT_RUNTIME = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_names() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {_name(r) for r in data["project"]["dependencies"]}


def conda_names(path: Path) -> set[str]:
    lines = path.read_text().split("dependencies:", 1)[1].splitlines()
    names = {_name(line.strip()[2:]) for line in lines if line.strip().startswith("- ")}
    return {CONDA_TO_PYPI.get(n, n) for n in names} - NOT_RUNTIME


def test_environment_yml_matches_pyproject():
    assert conda_names(ROOT / "environment.yml") == pyproject_names()


def test_binder_environment_is_identical_to_root():
    assert (ROOT / "binder/environment.yml").read_text() == (ROOT / "environment.yml").read_text()


def test_binder_post_build_installs_the_package():
    assert "pip install" in (ROOT / "binder/postBuild").read_text()


def test_required_dependencies_are_listed():
    required = {"torch", "transformers", "datasets", "ipywidgets", "matplotlib", "seaborn",
                "jupyterlab", "nbval", "safetensors", "huggingface-hub", "tqdm", "pandas"}
    assert required <= pyproject_names()
