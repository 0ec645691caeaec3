"""The README's table of reproduced figures cites numbers that the notebooks printed."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADING = "### The paper's figures, reproduced"


def table_rows() -> list[list[str]]:
    section = (ROOT / "README.md").read_text().split(HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def stored_outputs(notebook: str) -> str:
    """All text that the executed notebook shows (stdout and plain-text results)."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)


ROWS = table_rows()


def test_the_table_lists_every_figure_the_issue_asks_for():
    papers = " ".join(row[0] for row in ROWS)
    # Every figure and table of REFERENCE §7 (the paper's v6 numbering).
    for figure in ("Fig. 1", "Fig. 3", "Fig. 4", "Fig. 5", "Fig. 6", "Fig. 7", "Figs. 8/20",
                   "Fig. 9", "Fig. 11", "Fig. 12", "Fig. 13", "Fig. 14", "Figs. 17/18",
                   "Fig. 19", "Table 1", "Table 2"):
        assert figure + " " in papers + " ", figure


@pytest.mark.parametrize("row", ROWS, ids=[row[0].split(" (")[0] for row in ROWS])
def test_measured_numbers_come_from_the_notebooks(row):
    notebooks = re.findall(r"`(\d\d_\w+)`", row[1])
    assert notebooks, row[1]
    shown = "\n".join(stored_outputs(name) for name in notebooks)
    numbers = re.findall(r"\d+\.\d+", row[-1])
    assert numbers, f"no measured number in {row[-1]!r}"
    missing = [n for n in numbers if n not in shown]
    assert not missing, f"{missing} not in the outputs of {notebooks}"


def authors_numbers() -> set[str]:
    """Every number in the authors' data, as the README would print it."""
    from lensbook.analysis.authors import AUTHORS_VALUES, authors_curves, authors_table1

    curves, table = authors_curves(), authors_table1()
    values = [*curves["value"], *table["auroc"], *table["low"], *table["high"]]
    shown = {f"{v:.2f}" for v in values}
    singles = [v for v in AUTHORS_VALUES.values() if isinstance(v, float)]
    pairs = [x for pair in AUTHORS_VALUES["table2_spearman"].values() for x in pair]
    return shown | {str(abs(v)) for v in singles} | {f"{v:.3f}" for v in pairs}


def test_the_authors_column_cites_the_shipped_data():
    header = (ROOT / "README.md").read_text().split(HEADING, 1)[1]
    assert "| authors' number | measured offline |" in header
    known = authors_numbers()
    for row in ROWS:
        numbers = re.findall(r"\d+\.\d+(?![A-Za-z\d])", row[-2])  # not "2.7B"
        missing = [n for n in numbers if n not in known]
        assert not missing, f"{missing} of {row[0]!r} are not in lensbook/paper_data"


def load_gallery_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gallery", ROOT / "scripts" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GALLERY = ROOT / "docs" / "figures"
# The README shows these next to the paper's claims: logit vs tuned lens, bias, bits/byte
# across model sizes, prediction depth.
KEY_FIGURES = ("paper_fig1", "paper_fig3", "paper_fig5", "04_depth_text_tuned")


def test_the_gallery_is_the_figures_the_notebooks_show():
    script = load_gallery_script()
    made = script.gallery(ROOT / "notebooks")
    assert len(made) >= 20, sorted(made)
    shown = script.committed(GALLERY)
    assert sorted(shown) == sorted(made), "run `make gallery` (docs/figures/ is stale)"
    stale = [name for name in made if shown[name] != made[name]]
    assert not stale, f"{stale} differ from the notebooks' outputs: run `make gallery`"


def readme_images() -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())


def test_every_readme_image_exists_and_the_key_figures_are_shown():
    images = [path for path in readme_images() if "://" not in path]  # not the badges
    missing = [path for path in images if not (ROOT / path).is_file()]
    assert not missing, missing
    for name in KEY_FIGURES:
        assert f"docs/figures/{name}.png" in images, name
    assert not (ROOT / "figures").exists(), "the orphan figures/ folder is back"


def test_the_gallery_command_copies_shown_figures_and_drops_stale_ones(tmp_path):
    import base64

    script = load_gallery_script()
    cell = {"cell_type": "code", "source": ['fig = plot()\n', 'plotting.save_figure(fig, "01_x")'],
            "outputs": [{"output_type": "execute_result",
                         "data": {"image/png": base64.b64encode(b"png bytes").decode()}}]}
    (tmp_path / "01_demo.ipynb").write_text(json.dumps({"cells": [cell]}))
    out = tmp_path / "figures"
    out.mkdir()
    (out / "gone.png").write_bytes(b"old")
    args = ["--notebooks", str(tmp_path), "--out", str(out)]
    assert script.main([*args, "--check"]) == 1
    assert script.main(args) == 0
    assert script.committed(out) == {"01_x": b"png bytes"}
    assert script.main([*args, "--check"]) == 0
    cell["outputs"] *= 2  # a saved figure shown twice: which one is it?
    (tmp_path / "01_demo.ipynb").write_text(json.dumps({"cells": [cell]}))
    with pytest.raises(ValueError, match="shows 2 images"):
        script.gallery(tmp_path)
