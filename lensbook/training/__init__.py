"""Training a lens: config, objective, loop, optimiser, checkpoints, data parallelism, data.

Training talks to a lens only through :class:`~lensbook.core.lens.Lens`
(``read_points``, ``transform_hidden``, ``trainable_parameters``, ``state``).
"""
