"""Run notebooks with their online profile against the stand-in Hub; time them and their RSS.

Usage: python -m benchmarks.run_online [NOTEBOOK ...] [--cell-timeout S] [--no-table]

Each notebook runs in a fresh kernel (nbclient) from a temporary copy, with
``LENSBOOK_PROFILE=online`` and the environment of :func:`tests.hub_double.env.double_env`
(``HF_HUB_OFFLINE=1``, the double's caches). A thread polls the kernel's process tree with
psutil for its peak RSS. Execution stops at the first failing cell (``--keep-going`` runs
the rest and lists every failure); the failure (cell number, exception, message and the
failing line) goes into the table in ``benchmarks/RESULTS.md`` under
"Online profiles against the stand-in Hub", one row per notebook, replaced on a re-run.

A notebook states what a *trained* model does as ``assert``s (claims); everything else it
does (loading, tokenising, running lenses, plotting, time, memory) is mechanics. On the
stand-in Hub's random weights only the mechanics can be checked: ``--claims-unchecked``
lists a failing ``assert`` or exercise check in the result instead of failing the run,
and any other error, a timeout or a kernel killed for memory still fails it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from tests.hub_double import env

NOTEBOOKS = sorted((env.REPO_ROOT / "notebooks").glob("*.ipynb"))
RESULTS = env.REPO_ROOT / "benchmarks" / "RESULTS.md"
HEADING = "# Online profiles against the stand-in Hub"
# Printed by a cell inserted after the parameters cell: the model and profile it chose.
MODEL_PROBE = ('P_ = globals().get("P", {}); print("__MODEL__", '
               'P_.get("MODEL", globals().get("MODEL")), P_.get("PROFILE", "?"))')
# Variables that would send ``load_published`` somewhere other than the (double's) Space.
UNSET = ("TUNED_LENS_REPO_ID", "TUNED_LENS_REPO_TYPE")


@dataclass
class Run:
    """The outcome of one notebook."""

    notebook: str
    model: str = "?"
    wall_s: float = 0.0
    peak_rss_mib: float = 0.0
    result: str = "passed"
    peak_by_cell: dict[int, float] = field(default_factory=dict)  # MiB, notebook's numbering
    profile: str = "online"
    cpu_s: float | None = None  # the kernel's user + system time: does not grow with load
    load: float | None = None  # the machine's mean 1-minute load average during the run
    seconds_by_cell: dict[int, float] = field(default_factory=dict)  # wall, notebook's numbering


class PeakRss(threading.Thread):
    """Polls the RSS of this process's children (the kernel and what it spawns).

    Kills them when their total passes ``limit_mib``, so that a notebook that needs more
    memory than the machine has fails alone instead of waking the OOM killer.
    """

    def __init__(self, limit_mib: float, interval: float = 0.2):
        super().__init__(daemon=True)
        self.limit, self.interval = limit_mib * 2**20, interval
        self.peak, self.killed, self._stop_event = 0, False, threading.Event()
        self.cell, self.by_cell = -1, {}  # the cell running now; each cell's peak
        self.cpu, self.loads = {}, []  # each child's latest user + system seconds; load samples

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(self.interval):
            children = me.children(recursive=True)
            total = sum(_rss(child) for child in children)
            self.cpu.update({child.pid: _cpu(child) for child in children})
            self.loads.append(os.getloadavg()[0])
            self.peak = max(self.peak, total)
            self.by_cell[self.cell] = max(self.by_cell.get(self.cell, 0), total / 2**20)
            if total > self.limit and not self.killed:
                self.killed = True
                for child in children:
                    with contextlib.suppress(psutil.Error):
                        child.kill()

    def stop(self) -> float:
        """Stop polling; the peak in MiB."""
        self._stop_event.set()
        self.join()
        return self.peak / 2**20


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    except psutil.Error:
        return 0.0


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def online_environment(profile: str = "online") -> None:
    """Point this process (and so the kernels it starts) at the double, with ``profile``."""
    os.environ.update(env.double_env())
    os.environ["LENSBOOK_PROFILE"] = profile
    for name in UNSET:
        os.environ.pop(name, None)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failing_line(err: Exception) -> str:
    """The source line IPython marks with ``---->`` in the traceback (the last one)."""
    lines = ANSI.sub("", str(getattr(err, "traceback", "") or err)).splitlines()
    marked = [line.split("---->", 1)[1].strip() for line in lines if "---->" in line]
    return f" at `{marked[-1][:120]}`" if marked else ""


def _failure(index: int, err: Exception) -> str:
    if isinstance(err, CellTimeoutError):
        return f"cell {index}: timeout"
    if isinstance(err, DeadKernelError):
        return f"cell {index}: the kernel died"
    name = getattr(err, "ename", type(err).__name__)
    value = str(getattr(err, "evalue", "") or "").strip().splitlines()
    message = f": {value[0][:160]}" if value else ""
    return f"cell {index}: {name}{message}{_failing_line(err)}"


FATAL = (CellTimeoutError, DeadKernelError)


CLAIM_ERRORS = ("AssertionError", "ExerciseNotSolved")


def _is_claim(err: Exception) -> bool:
    """A failed notebook ``assert`` or exercise check: a claim about what a trained model does.

    An exercise's check runs on its solution and checks the answer against the model (the
    embedded model copies names, its loss falls with depth): on random weights it cannot
    hold, like an ``assert``. An error in the solution's own code is still a failure.
    """
    return getattr(err, "ename", "") in CLAIM_ERRORS


def _execute(client: NotebookClient, nb, run: Run, keep_going: bool, probe: int,
             claims_unchecked: bool = False, rss: PeakRss | None = None) -> None:
    """Run every cell, stopping at the first error unless ``keep_going``.

    With ``claims_unchecked`` (random weights), a failing ``assert`` is a claim that
    cannot hold here: it is listed, not counted as a failure, and the run goes on.
    Failures name the cell's index in the original notebook (without the probe).
    """
    failures, claims = [], []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if rss is not None:
                rss.cell = index - (index > probe)
            start = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, *FATAL) as err:
                failure = _failure(index - (index > probe), err)
                if claims_unchecked and _is_claim(err):
                    claims.append(failure)
                    continue
                failures.append(failure)
                if not keep_going or isinstance(err, FATAL):
                    break
            finally:
                run.seconds_by_cell[index - (index > probe)] = time.monotonic() - start
    run.result = "; ".join(failures) or "passed"
    if claims:
        run.result += " (claims not checked on random weights: " + "; ".join(claims) + ")"


def _with_probe(nb) -> int:
    """Insert the model probe after the parameters cell; returns its index."""
    where = next((i + 1 for i, c in enumerate(nb.cells) if "select_profile" in c.source), 0)
    nb.cells.insert(where, nbformat.v4.new_code_cell(MODEL_PROBE))
    return where


def _probed_model(cell) -> tuple[str, str]:
    """The model and the profile the notebook chose."""
    for output in cell.get("outputs", []):
        if "__MODEL__" in output.get("text", ""):
            model, _, profile = output["text"].split("__MODEL__", 1)[1].strip().rpartition(" ")
            return model, profile
    return "?", "?"


def run_notebook(path: Path, cell_timeout: int, keep_going: bool = False,
                 max_rss_mib: float = 8192, claims_unchecked: bool = False) -> Run:
    """Execute one notebook's copy with the online profile; measure time and peak RSS."""
    run = Run(path.name)
    nb = nbformat.read(path, as_version=4)
    probe = _with_probe(nb)
    with tempfile.TemporaryDirectory(prefix="online-") as work:
        shutil.copy(path, work)
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                                resources={"metadata": {"path": work}})
        rss = PeakRss(max_rss_mib)
        rss.start()
        start = time.monotonic()
        try:
            _execute(client, nb, run, keep_going, probe, claims_unchecked, rss)
        finally:
            run.wall_s = time.monotonic() - start
            run.peak_rss_mib, run.peak_by_cell = rss.stop(), rss.by_cell
            run.cpu_s = sum(rss.cpu.values())
            run.load = sum(rss.loads) / len(rss.loads) if rss.loads else None
            run.model, run.profile = _probed_model(nb.cells[probe])
            if rss.killed:
                run.result += f" (killed by the runner: RSS over {max_rss_mib:.0f} MiB)"
    return run


def row(run: Run) -> str:
    """The table row of ``run``."""
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    result = run.result.replace("|", "\\|")  # a failing line may hold a pipe
    cpu = "–" if run.cpu_s is None else f"{run.cpu_s:.0f}"
    load = "–" if run.load is None else f"{run.load:.1f}"
    return (f"| {run.notebook} | {run.profile} | {run.model} | {run.wall_s:.0f} | {cpu} | "
            f"{load} | {run.peak_rss_mib:.0f} | {result} | {day} |")


def slowest_cells(run: Run, count: int = 4) -> str:
    """The cells that took longest, e.g. ``"12: 95 s, 10: 40 s"``."""
    cells = sorted(run.seconds_by_cell.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{cell}: {seconds:.0f} s" for cell, seconds in cells)


def top_cells(run: Run, count: int = 4) -> str:
    """The cells during which the RSS peaked highest, e.g. ``"10: 1850 MiB, 6: 900 MiB"``."""
    cells = sorted(run.peak_by_cell.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{cell}: {mib:.0f} MiB" for cell, mib in cells)


TABLE_HEAD = [
    "| notebook | profile | model | wall time (s) | kernel CPU (s) | load | peak RSS (MiB) "
    "| result | date |",
    "|---|---|---|---:|---:|---:|---:|---|---|",
]
INTRO = [
    "",
    "Measured by `python -m benchmarks.run_online` (`make test-online`): each notebook runs",
    "in a fresh kernel with `LENSBOOK_PROFILE=online` against the stand-in Hub",
    "(`tests/hub_double`: the real configs and tokenizer layouts with random weights, the",
    "published-lens Space and an offline Pile) with `HF_HUB_OFFLINE=1`, on this machine's",
    "CPUs (2 cores, shared). Peak RSS is the kernel's process tree, polled every 0.2 s.",
    "Kernel CPU is that tree's user + system time, which other jobs on the machine do not",
    "inflate; load is the machine's mean 1-minute load average during the run (above 2,",
    "other jobs shared the cores and the wall time is an upper bound).",
    "Random weights make every number a cost, not a result, and an `assert` about what a",
    "*trained* model does (layer 0 copies its input, the tuned lens beats the logit lens)",
    "is expected to fail here; with `--keep-going` every failing cell is listed.",
    "",
]


def update_table(runs: list[Run], path: Path = RESULTS) -> None:
    """Replace or append each run's row in the section under ``HEADING``."""
    lines = path.read_text().splitlines() if path.exists() else []
    if HEADING not in lines:
        lines += ["", HEADING, *INTRO, *TABLE_HEAD]
    start = lines.index(HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# ")),
               len(lines))
    section = lines[start:end]
    for run in runs:
        new = row(run)
        key = f"| {run.notebook} | {run.profile} |"
        old = [i for i, line in enumerate(section) if line.startswith(key)]
        if old:
            section[old[0]] = new
        else:
            last = max(i for i, line in enumerate(section) if line.startswith("|"))
            section.insert(last + 1, new)
    path.write_text("\n".join(lines[:start] + section + lines[end:]) + "\n")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=NOTEBOOKS)
    parser.add_argument("--cell-timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--no-table", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--max-rss-mib", type=float, default=8192,
                        help="kill the kernel when its process tree's RSS passes this")
    parser.add_argument("--keep-going", action="store_true",
                        help="run the cells after a failing one too, and report every failure")
    parser.add_argument("--claims-unchecked", action="store_true",
                        help="random weights: a failing assert is listed, not a failure")
    parser.add_argument("--profile", default="online",
                        help="LENSBOOK_PROFILE for the notebooks (offline: what Binder gets "
                             "without the Hub)")
    args = parser.parse_args()
    online_environment(args.profile)
    failed = 0
    for path in args.notebooks:
        run = run_notebook(path, args.cell_timeout, args.keep_going, args.max_rss_mib,
                           args.claims_unchecked)
        print(row(run), flush=True)
        print("  highest RSS by cell:", top_cells(run), flush=True)
        print("  slowest cells:", slowest_cells(run), flush=True)
        failed += not run.result.startswith("passed")
        if not args.no_table:
            update_table([run])
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
