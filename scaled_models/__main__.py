"""``python -m scaled_models table``: see ``scaled_models.cli``."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
