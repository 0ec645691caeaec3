"""``python -m lensbook.build_default``: rebuild an embedded model (:mod:`lensbook.embedded.build`).

Kept as the command's name, which the model cards and notebooks quote.
"""

from lensbook.embedded.build import main

if __name__ == "__main__":
    main()
