"""The notebooks follow STYLE.md's conventions (checked on their source, not by running them)."""

import ast
import configparser
import json
import re
import statistics
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path, kind):
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == kind]


def source(cell):
    return "".join(cell["source"])


def python_only(code):
    """Drop IPython magics and shell escapes so `ast` can parse the cell."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in code.splitlines())


pytestmark = pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def notebook(request):
    return request.param


def test_code_cells_are_short(notebook):
    lengths = [len(source(c).strip().splitlines()) for c in cells(notebook, "code")]
    assert statistics.median(lengths) <= 8, lengths
    assert max(lengths) <= 20, lengths


def test_no_long_functions_or_classes(notebook):
    for cell in cells(notebook, "code"):
        for node in ast.walk(ast.parse(python_only(source(cell)))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                assert node.end_lineno - node.lineno + 1 <= 10, f"{node.name} is too long"


def test_more_prose_than_code(notebook):
    assert len(cells(notebook, "markdown")) > len(cells(notebook, "code"))


def test_badges_and_parameters_cell(notebook):
    first = source(cells(notebook, "markdown")[0])
    assert "colab.research.google.com" in first and "mybinder.org" in first
    tags = [c.get("metadata", {}).get("tags", []) for c in cells(notebook, "code")]
    assert any("parameters" in t for t in tags)


def test_every_figure_is_saved_with_the_notebook_prefix(notebook):
    prefix = notebook.name[:2]
    code = "\n".join(source(c) for c in cells(notebook, "code"))
    names = re.findall(r"save_figure\([^,]+,\s*f?[\"']([^\"']+)", code)
    assert names, "the notebook saves no figure"
    # The paper's figures keep the paper's numbering (figures/paper_fig<N>.png).
    assert all(name.startswith((prefix + "_", "paper_fig")) for name in names), names
    # A live view (plotting.LiveTrainingPlot) redraws during training; what it shows is
    # drawn again from the run's history and saved by a later cell.
    drawn = r"\bplotting\.(?!LiveTrainingPlot\b)\w+\("
    shown = [c for c in cells(notebook, "code") if re.search(drawn, source(c))]
    for cell in shown:
        assert "save_figure" in source(cell), source(cell)


def test_key_results_are_asserted(notebook):
    code = "\n".join(source(c) for c in cells(notebook, "code"))
    assert code.count("assert ") >= 3


def test_summary_and_exercises(notebook):
    text = "\n".join(source(c) for c in cells(notebook, "markdown")).lower()
    assert "takeaways" in text and "exercises" in text


def _sanitized(text: str) -> str:
    """``text`` after the substitutions of notebooks/sanitize.cfg, as nbval applies them."""
    config = configparser.ConfigParser()
    config.read(NOTEBOOKS[0].parent / "sanitize.cfg")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


def _compared_text(cell) -> str:
    """What nbval compares of a cell's stored outputs (text, not images or widgets)."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind in ("text/plain", "text/html"):
            parts.append("".join(output.get("data", {}).get(kind, "")))
    return _sanitized("\n".join(parts))


def test_printed_decimals_are_not_compared(notebook):
    """A printed float can move in its last digit on another CPU (README: "Outputs that hold
    on every CPU"): cells that print one are marked NBVAL_IGNORE_OUTPUT and assert their claim."""
    for cell in cells(notebook, "code"):
        code = source(cell)
        if re.search(r"\d\.\d", _compared_text(cell)):
            assert "# NBVAL_IGNORE_OUTPUT" in code, f"compared output prints a float:\n{code}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_output_names_profile_model_device_and_time(path):
    """Every profile gives an expected duration, and the first thing shown is the banner."""
    code = cells(path, "code")
    params = next(c for c in code if "select_profile(" in source(c))
    for profile in ("OFFLINE", "GPU", "CPU"):
        assert re.search(rf"^{profile} = \{{[^}}]*\"MINUTES\"", source(params), re.M | re.S), \
            f"{profile} has no MINUTES"
    first = next(c for c in code if c.get("outputs"))
    text = "".join("".join(o.get("text", "")) for o in first["outputs"])
    assert re.match(r"profile \w+ \(.+\): model \S+ on \w+, about \d+ minutes?\n", text), text
