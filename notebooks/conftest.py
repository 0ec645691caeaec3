"""nbval settings for the notebooks: compare text outputs only."""

# `make student` writes the student versions here; nbval runs the solution notebooks only
# (tests/test_exercises.py runs the student ones).
collect_ignore = ["student"]


def pytest_collectstart(collector):
    """Widgets, HTML and progress bars are rendered differently on every run: skip them."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += (
            "text/html",
            "application/javascript",
            "application/vnd.jupyter.widget-view+json",
            "application/vnd.jupyter.widget-state+json",
        )
