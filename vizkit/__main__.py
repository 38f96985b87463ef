"""``python -m vizkit``: the same as the ``vizkit`` command (see :mod:`vizkit.cli`)."""

import sys

from vizkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
