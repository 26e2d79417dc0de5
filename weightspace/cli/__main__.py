"""``python -m weightspace.cli``: the command line, as the ``weightspace`` script runs it."""

import sys

from weightspace.cli import main

sys.exit(main())
