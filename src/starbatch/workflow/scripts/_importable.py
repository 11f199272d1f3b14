"""Makes the starbatch package these scripts ship in importable when the Python running
a rule lacks it (a conda environment of the rules: `--sdm conda`; a checkout that is
not installed). Appended last, so the environment's own packages come first."""

import sys
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])  # src/, or site-packages
if PACKAGE_PARENT not in sys.path:
    sys.path.append(PACKAGE_PARENT)
