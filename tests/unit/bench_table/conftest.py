"""bench/ is not an installed package (pyproject installs only svcnet): put the repository
root on sys.path so these tests import ``bench.cluster`` as ``python -m bench.cluster`` does."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
