"""``python -m hapo_rl.report``."""

import sys

from hapo_rl.report.cli import main

sys.exit(main())
