"""scripts/install_torch.sh picks the CPU build of torch on a machine without local wheels.

No network here, so two local package indexes stand in: one like PyPI (whose Linux torch
is the CUDA build) and one like PyTorch's CPU index. pip runs with no configuration of
ours (``PIP_CONFIG_FILE=/dev/null``) and ``--dry-run``, and we read what it would install
from its ``--report``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_torch.sh"


def _stub_wheel(folder: Path, version: str) -> None:
    """A minimal wheel of ``torch`` at ``version`` in a pip "simple" index at ``folder``."""
    name = f"torch-{version}-py3-none-any.whl"
    project = folder / "torch"
    project.mkdir(parents=True)
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(project / name, "w") as wheel:
        metadata = f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n"
        wheel.writestr(f"{info}/METADATA", metadata)
        tags = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        wheel.writestr(f"{info}/WHEEL", tags)
        wheel.writestr(f"{info}/RECORD", "")
    (project / "index.html").write_text(f'<html><body><a href="{name}">{name}</a></body></html>')


def _run(tmp_path: Path, index: str | None, local_wheels: bool = False) -> tuple[str, str]:
    """The script's message and the torch version pip would install."""
    pypi, cpu = tmp_path / "pypi", tmp_path / "cpu"
    if not pypi.exists():
        _stub_wheel(pypi, "2.13.0")  # PyPI's Linux wheel: the CUDA build
        _stub_wheel(cpu, "2.13.0+cpu")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": pypi.as_uri(),
           "PIP_DRY_RUN": "1", "PIP_IGNORE_INSTALLED": "1", "PIP_NO_DEPS": "1",
           "PIP_REPORT": str(tmp_path / "report.json"), "TORCH_CPU_INDEX": cpu.as_uri()}
    env.pop("PIP_FIND_LINKS", None)
    if local_wheels:  # a CPU wheel on disk, as on our machines; the CPU index unreachable
        env.update(PIP_FIND_LINKS=str(cpu / "torch"), TORCH_CPU_INDEX=(tmp_path / "none").as_uri())
    args = ["bash", str(SCRIPT), sys.executable, "torch==2.13.0"]
    args += [index] if index is not None else []
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    [installed] = report["install"]
    return result.stdout, installed["metadata"]["version"]


@pytest.mark.slow
def test_auto_without_local_wheel_takes_the_cpu_index(tmp_path):
    message, version = _run(tmp_path, None)
    assert "from the CPU wheel index" in message
    assert version == "2.13.0+cpu"


@pytest.mark.slow
def test_empty_index_means_pips_own_configuration(tmp_path):
    message, version = _run(tmp_path, "")
    assert "pip's configured indexes" in message
    assert version == "2.13.0"


@pytest.mark.slow
def test_auto_with_a_local_cpu_wheel_uses_it(tmp_path):
    message, version = _run(tmp_path, None, local_wheels=True)
    assert "the CPU build pip finds on this machine" in message
    assert version == "2.13.0+cpu"
