"""Make the shared ``events_helpers`` module importable without packages."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
