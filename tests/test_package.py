"""The package's import surface."""

import subprocess
import sys

import lensbook


def test_lazy_submodules_and_names_resolve():
    assert lensbook.plotting.save_figure
    assert lensbook.TrainConfig.preset("quick").steps > 0
    assert callable(lensbook.train_lens) and callable(lensbook.evaluate_lenses)
    for name in lensbook.__all__:
        assert getattr(lensbook, name) is not None, name


def test_import_lensbook_does_not_import_ipywidgets():
    code = "import sys, lensbook; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
