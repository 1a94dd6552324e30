"""Ctrl-C on both backends: the first SIGINT ends ``ros.spin``, a second never cuts cleanup short.

``ros2 launch`` forwards the terminal's Ctrl-C and the terminal delivers it too, so a node
gets SIGINT twice; rclpy's own handler would also have shut the context down already.
"""

import os
import select
import signal
import subprocess
import sys
import time

from conftest import REPO

NODE = """
import sys, time
from distill_ros import ros
ros.init([])
node = ros.Node("ctrl_c_target")
pub = node.create_publisher(ros.get_interface("std_msgs/msg/String"), "/ctrl_c/out", 10)
print("SPINNING", flush=True)
try:
    ros.spin(node)
except KeyboardInterrupt:
    print("CLEANING", flush=True)
    time.sleep(1.5)                        # a slow cleanup, e.g. a stage saving
    pub.publish(ros.get_interface("std_msgs/msg/String")(data="bye"))   # context still valid
    print("CLEANED", flush=True)
finally:
    node.destroy_node()
    ros.shutdown()
"""


def _read_until(proc, marker, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        line = proc.stdout.readline() if ready else ""
        if line.strip() == marker:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {marker}: {proc.stdout.read()}")


def test_a_second_sigint_during_cleanup_is_ignored_and_the_context_stays_valid():
    proc = subprocess.Popen([sys.executable, "-c", NODE], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    try:
        _read_until(proc, "SPINNING")
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _read_until(proc, "CLEANING")
        proc.send_signal(signal.SIGINT)    # as ros2 launch does, while cleanup runs
        proc.send_signal(signal.SIGTERM)   # and what a launcher sends when it loses patience
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "CLEANED" in out and "Traceback" not in out, out
    assert "SIGINT ignored: already shutting down" in out, out
