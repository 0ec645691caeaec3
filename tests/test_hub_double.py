"""Online-profile loading against the stand-in Hub (``tests/hub_double``), in a subprocess.

The checks live in ``tests/hub_double/checks.py``; they need ``HF_HUB_CACHE`` and offline
mode set before ``huggingface_hub`` and ``datasets`` are imported, which this process
did long ago, so they run in a fresh interpreter with the double's environment.
Skipped when the double has not been built (``make hub-double``).
"""

import os
import subprocess
import sys

import pytest

from tests.hub_double import configs, env, layout, pile, published

BUILT = (all(layout.is_built(env.hub_cache(), m) for m in configs.CONFIGS)
         and layout.is_built(env.hub_cache(), published.REPO_ID, published.REPO_TYPE)
         and pile.is_built(env.datasets_cache()))


@pytest.mark.slow
@pytest.mark.skipif(not BUILT, reason="the stand-in Hub is not built: run `make hub-double`")
def test_online_models_lenses_and_data_load_from_the_stand_in_hub():
    checks = env.REPO_ROOT / "tests" / "hub_double" / "checks.py"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(checks), "-q", "-p", "no:cacheprovider",
         "-W", "ignore::DeprecationWarning"],
        cwd=env.REPO_ROOT, env={**os.environ, **env.double_env()},
        capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
