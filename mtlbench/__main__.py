"""``python -m mtlbench ...``: the ``mtlbench`` command, for environments without its script on PATH."""

import sys

from mtlbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
