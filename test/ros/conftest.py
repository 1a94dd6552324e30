"""Fixtures of the middleware tests: loopback-only Cyclone DDS on a private domain.

The environment is set when this file is imported, before any test imports
``distill_ros.ros``, and child processes inherit it. Every DDS process the tests
start therefore talks to 127.0.0.1 only, with multicast off, on a random domain
so concurrent test sessions on one machine do not hear each other.
"""

import os
import select
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional

import pytest

# The loopback-only DDS environment is set by the top-level test/conftest.py.

PEER = os.path.join(os.path.dirname(__file__), "ros_peer.py")


class Peer:
    """A ``ros_peer.py`` child process and its output lines."""

    def __init__(self, role: str, arg: str = "", env: Optional[Dict[str, str]] = None) -> None:
        self.role = role
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, PEER, role, arg], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, env=env or dict(os.environ))

    def _errors(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Block until the peer printed READY."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = self.proc.stdout.readline()
            if line.strip() == "READY":
                return
            if not line:
                break
        raise AssertionError(f"peer {self.role} not ready: {self._errors()}")

    def lines(self, timeout_s: float = 15.0) -> List[str]:
        """Close stdin, wait for exit, return the remaining stdout lines."""
        out, _ = self.proc.communicate(input="", timeout=timeout_s)
        assert self.proc.returncode == 0, f"peer {self.role} failed: {self._errors()}"
        return [line for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        """Kill the peer if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self._stderr.close()


@pytest.fixture
def peer() -> Iterator:
    """Start peer processes by role; all are stopped at teardown."""
    started: List[Peer] = []

    def start(role: str, arg: str = "") -> Peer:
        started.append(Peer(role, arg))
        return started[-1]
    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def ros_mod() -> Iterator:
    """The ``distill_ros.ros`` module, initialised for this test module."""
    from distill_ros import ros
    ros.init([])
    yield ros
    ros.shutdown()


@pytest.fixture
def make_node(ros_mod):
    """``make_node(name, **kwargs)``: nodes destroyed after the test, newest first."""
    made = []

    def make(name, **kwargs):
        made.append(ros_mod.Node(name, **kwargs))
        return made[-1]
    yield make
    for n in reversed(made):
        n.destroy_node()
