"""A real redis-server for tests, on 127.0.0.1 and a free port (import as ``helpers.redis_server``).

Fixtures (registered for every test through ``tests/conftest.py``):

* ``redis_server``: a started :class:`RedisServer` (``url``, ``port``, ``stop()``,
  ``start()`` again on the same port: a server that goes away and comes back);
* ``redis_url``: its base URL ``redis://127.0.0.1:PORT``; append ``/STREAM`` for a stream.

The server keeps nothing on disk (``--save '' --appendonly no``) and is shut down after the
test. Tests using them are skipped, with the reason, where redis-server is not installed
(``make test`` installs it; ``TRADERSEG_REDIS_SERVER`` may point at a binary).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def redis_binary() -> str | None:
    """Path of redis-server (``TRADERSEG_REDIS_SERVER`` first), or ``None``."""
    explicit = os.environ.get("TRADERSEG_REDIS_SERVER")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1, started and stopped by the test."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        import redis

        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        """Shut the server down (its data is gone: nothing is saved)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (make test installs it from the system's "
                    "packages; or set TRADERSEG_REDIS_SERVER)")
    server = RedisServer(binary, free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
