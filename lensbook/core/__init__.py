"""The lens core: the model and its forward pass, the output head, lenses, lens files, runs.

Layers below depend on nothing above them: ``model`` and ``parts`` (load and dissect a
decoder), ``head`` (:class:`~lensbook.core.head.Unembed`), ``lens`` (the interface and
registry), ``tuned`` (the tuned lens), ``files`` (save/load), ``tokens``, ``trajectory``
(the record) and ``run`` (running lenses over prompts).
"""
