"""``python -m affsr`` = the ``affsr`` command."""

import sys

from affsr.cli import main

sys.exit(main())
