"""`python -m harvester` runs the command line."""

import sys

from harvester.cli import main

sys.exit(main())
