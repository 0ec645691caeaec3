"""The online runner's results table: one row per notebook, replaced on a re-run."""

from benchmarks.run_online import HEADING, Run, update_table


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
    assert "| 40 | 1700 | cell 1: a \\| b |" in rows[0]
