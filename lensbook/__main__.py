"""``python -m lensbook``: see :mod:`lensbook.cli`."""

from lensbook.cli import main

raise SystemExit(main())
