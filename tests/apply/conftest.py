"""Make apply_support importable from this folder's tests; the PostgreSQL fixture."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from apply_support import postgres_server  # noqa: E402,F401  (session fixture)
