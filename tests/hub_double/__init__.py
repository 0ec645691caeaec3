"""A stand-in for the Hugging Face Hub: a local cache that answers like the Hub, offline.

Build it with ``python -m tests.hub_double.build``; point ``HF_HOME`` (and friends) at
it with :func:`tests.hub_double.env.double_env`. See ``tests/hub_double/README.md``.
"""
