"""Widget update latency: prompt change -> new figure, on the embedded model.

Changes the explorer's prompt ``--updates`` times (each a new prompt, so the model
runs every time) and prints the median, range and 90th percentile of the time from
setting the prompt to the new PNG being in the image widget, with the machine's load
average (on a busy machine the numbers are upper bounds). Target: median <= 200 ms.

It measures with torch's default number of threads and with one thread set outside the
explorer (the explorer itself computes on one thread, ``lensbook.widgets.one_thread``: a
forward pass over one short prompt gains nothing from intra-op threads, and on a machine
whose cores are busy the threads wait for each other).

Usage::

    python benchmarks/widget_latency.py [--model lensbook-tiny] [--updates 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import lensbook
from lensbook.widgets import explorer

TARGET_MS = 200
WORDS = ["list", "dictionary", "string", "module", "function", "class", "value", "file"]


def measure(model_name: str, updates: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per prompt change, ``updates`` of them.

    CPU time (this process, all threads) does not grow with other jobs' load as wall time
    does: on a busy machine it is the better estimate of the idle wall time.
    """
    model, tokenizer = lensbook.load_model(model_name)
    lenses = {"logit lens": lensbook.LogitLens.from_model(model),
              "tuned lens": lensbook.TunedLens.from_model(model)}
    widget = explorer(model, tokenizer, lenses, prompt="The for statement")
    times, cpu = [], []
    for i in range(updates):
        prompt = f"Return a new {WORDS[i % len(WORDS)]} with {i} items from the"
        start, start_cpu = time.perf_counter(), time.process_time()
        widget.runner.prompt.value = prompt  # what pressing Enter in the text box does
        times.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
        assert widget.trajectory is not None and widget.image.value == widget.png
    return times, cpu


def main() -> None:
    """Run the benchmark and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=lensbook.DEFAULT_MODEL)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    print(f"model {args.model}, {args.updates} prompt changes -> new figure each")
    for threads in dict.fromkeys([torch.get_num_threads(), 1]):
        torch.set_num_threads(threads)
        times, cpu = measure(args.model, args.updates)
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        verdict = "met" if median <= TARGET_MS else "missed"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"torch threads {threads}: median {median:.0f} ms, range {min(times):.0f}-"
              f"{max(times):.0f} ms, p90 {p90:.0f} ms (target median <= {TARGET_MS} ms: "
              f"{verdict}); CPU time median {statistics.median(cpu):.0f} ms; "
              f"load average {load} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
