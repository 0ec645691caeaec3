"""Analysis: what lenses show, as tidy tables and tensors.

Evaluation and transfer, statistics, drift, depth, copying, prompt features and
detectors, model comparison.

Analysis reads models through :mod:`lensbook.core` (never through the training loop);
every per-cell statistic comes from the registry :mod:`lensbook.analysis.statistic`.
"""
