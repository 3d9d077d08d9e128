"""Shared test helpers."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds the independent baseline implementations the feature tests compare against
# tests/helpers holds shared data builders (import as `helpers.<module>`)
for extra in (ROOT / "bench", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

# compiled feature SQL is cached in a folder of this run's own, never in the user's home
if "TRADERSEG_SQL_CACHE_DIR" not in os.environ:
    _SQL_CACHE = tempfile.mkdtemp(prefix="traderseg-sql-")
    os.environ["TRADERSEG_SQL_CACHE_DIR"] = _SQL_CACHE
    atexit.register(shutil.rmtree, _SQL_CACHE, True)

# the redis_server / redis_url fixtures: a real redis-server per test on a free port
pytest_plugins = ["helpers.redis_server"]
