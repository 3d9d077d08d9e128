"""Shared test helpers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds the independent baseline implementations the feature tests compare against
# tests/helpers holds shared data builders (import as `helpers.<module>`)
for extra in (ROOT / "bench", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

# the redis_server / redis_url fixtures: a real redis-server per test on a free port
pytest_plugins = ["helpers.redis_server"]
