"""The online runner's results table: one row per notebook, replaced on a re-run."""

import re

import pytest

from benchmarks.run_online import HEADING, NOTEBOOKS, Run, update_table


def test_rows_are_appended_then_replaced_and_other_sections_kept(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Earlier section\n\nkept\n")
    update_table([Run("01.ipynb", "gpt2", 52.0, 1725.0)], results)
    update_table([Run("02.ipynb", "pythia", 10.0, 900.0, "cell 3: the kernel died")], results)
    update_table([Run("01.ipynb", "gpt2", 40.0, 1700.0, "cell 1: a | b")], results)
    text = results.read_text()
    assert text.startswith("# Earlier section\n\nkept\n") and text.count(HEADING) == 1
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert [r.split(" | ")[0] for r in rows] == ["| 01.ipynb", "| 02.ipynb"]
    assert "| 40 | – | – | 1700 | cell 1: a \\| b |" in rows[0]


def _notebook(tmp_path, *sources):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / "claims.ipynb"
    nbformat.write(nb, path)
    return path


def test_random_weights_list_failed_claims_but_fail_on_broken_mechanics(tmp_path):
    from benchmarks.run_online import run_notebook

    claim = 'assert 1 > 2, "the tuned lens beats the logit lens"'
    path = _notebook(tmp_path, claim, "x = 1")
    run = run_notebook(path, cell_timeout=60, claims_unchecked=True)
    assert run.result.startswith("passed (claims not checked on random weights: cell 0:")
    assert "the tuned lens beats the logit lens" in run.result
    strict = run_notebook(path, cell_timeout=60)
    assert strict.result.startswith("cell 0: AssertionError")
    broken = run_notebook(_notebook(tmp_path, claim, 'raise ValueError("no pad token")'),
                          cell_timeout=60, claims_unchecked=True)
    assert broken.result.startswith("cell 1: ValueError: no pad token")


def test_random_weights_list_a_failed_exercise_check_as_a_claim(tmp_path):
    from benchmarks.run_online import run_notebook

    check = ("from lensbook.exercises.core import ExerciseNotSolved\n"
             "raise ExerciseNotSolved('Exercise 3: the model does not copy')")
    run = run_notebook(_notebook(tmp_path, check, "x = 1"), cell_timeout=60,
                       claims_unchecked=True)
    assert run.result.startswith("passed (claims not checked on random weights: cell 0:")
    assert "ExerciseNotSolved" in run.result


def test_rows_name_the_profile_the_notebook_chose_and_its_peak_cells(tmp_path):
    from benchmarks.run_online import row, run_notebook, slowest_cells, top_cells

    params = 'P = {"MODEL": "gpt2", "PROFILE": "cpu"}  # as select_profile returns it'
    run = run_notebook(_notebook(tmp_path, params, "x = bytearray(50 * 2**20)"),
                       cell_timeout=60)
    assert (run.model, run.profile, run.result) == ("gpt2", "cpu", "passed")
    assert "| claims.ipynb | cpu | gpt2 |" in row(run)
    assert set(run.peak_by_cell) <= {-1, 0, 1, 2} and top_cells(run).count("MiB") >= 1
    assert run.cpu_s > 0 and run.load is not None  # the kernel's own time, the machine's load
    assert set(run.seconds_by_cell) == {0, 1} and slowest_cells(run).count(" s") == 2
    results = tmp_path / "RESULTS.md"
    update_table([run, Run("claims.ipynb", "tiny", 1.0, 500.0, profile="offline")], results)
    assert len([line for line in results.read_text().splitlines()
                if line.startswith("| claims.ipynb |")]) == 2


def _cpu_rows() -> dict[str, list[str]]:
    """The committed table's ``cpu`` rows, by notebook file name."""
    from benchmarks.run_online import RESULTS

    section = RESULTS.read_text().split(HEADING, 1)[1].split("\n# ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if re.match(r"\| \d\d_", line) and cells[1] == "cpu":
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_every_notebook_fits_binder_in_the_committed_table(name):
    """The committed measurements: each notebook's cpu profile ran, in 12 min and 2 GiB."""
    _, _, _, wall_s, _, _, rss_mib, result, _ = _cpu_rows()[name]
    assert result.startswith("passed"), result
    assert float(wall_s) <= 12 * 60 and float(rss_mib) <= 2048, (wall_s, rss_mib)


def test_the_readme_quotes_the_committed_table():
    """README's "what to expect" rows: each one's time and memory as measured."""
    from benchmarks.run_online import RESULTS

    readme = (RESULTS.parents[1] / "README.md").read_text()
    quoted = re.findall(r"^  \| (\d\d_\w+) \| (\S+) \| (\d+) \| (\d+) \|$", readme, re.M)
    assert len(quoted) >= 8, "README's table of cpu-profile costs is missing"
    rows = _cpu_rows()
    for notebook, model, wall_s, rss_mib in quoted:
        row = rows[f"{notebook}.ipynb"]
        assert (row[2], row[3], row[6]) == (model, wall_s, rss_mib), notebook
