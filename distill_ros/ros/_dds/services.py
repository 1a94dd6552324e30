"""Service servers and clients of the DDS backend, in rmw_cyclonedds' wire format.

A service ``/s`` is a request topic ``rq/sRequest`` and a reply topic
``rr/sReply``. Each payload starts with rmw_cyclonedds' header: the client's
``uint64`` id and an ``int64`` sequence number; the server echoes both so the
client can pick its reply out of the shared reply topic. Client endpoints carry
USER_DATA ``clientid=<id>;``, server endpoints ``serviceid=<id>;``: a server
waits until the reply reader with the requester's ``clientid`` is matched
before answering, as rmw_cyclonedds does, so the first reply is not lost.
"""

import concurrent.futures
import logging
import os
import threading
import time
from typing import Any, Callable, Optional, Set

from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.qos import Policy
from cyclonedds.util import duration

from distill_ros.ros import qos as q
from distill_ros.ros.names import dds_service_topic_names
from distill_ros.ros._dds.typegen import prepare

_LOG = logging.getLogger(__name__)

#: How long a server waits for the requester's reply reader to be matched.
REPLY_READER_WAIT_S = 1.0
_ANY_NEW = SampleState.NotRead | ViewState.Any | InstanceState.Any


def csid_to_string(csid: bytes) -> str:
    """Format a 16-byte client/service id the way rmw_cyclonedds writes it in USER_DATA."""
    return f"{csid[0]:2x}" + "".join(f".{b:x}" for b in csid[1:])


def user_data_value(endpoint: Any, key: str) -> Optional[str]:
    """Return ``key``'s value in a matched endpoint's USER_DATA (``k=v;`` pairs)."""
    if endpoint is None or endpoint.qos is None:
        return None
    policy = endpoint.qos[Policy.Userdata]
    if policy is None:
        return None
    for item in policy.data.decode(errors="replace").split(";"):
        name, _, value = item.partition("=")
        if name == key:
            return value
    return None


def _service_wire(srv_type: type) -> Any:
    wire = getattr(srv_type, "_wire", None)
    if wire is None:
        raise TypeError(
            f"{srv_type!r} is not a service class: get it from "
            "distill_ros.ros.get_interface('pkg/srv/Name')")
    return wire


class Service:
    """Answers requests with ``callback(request, response) -> response`` (as rclpy)."""

    def __init__(self, node: Any, srv_type: type, name: str,
                 callback: Callable[[Any, Any], Any]) -> None:
        ctx = node.context
        self.srv_type = srv_type
        self.srv_name = name
        self.callback = callback
        self._wire = _service_wire(srv_type)
        rq_topic, rr_topic = dds_service_topic_names(name)
        user_data = f"serviceid={csid_to_string(os.urandom(16))};"
        self.reader = ctx.reader(rq_topic, self._wire.request, q.SERVICES_DEFAULT, user_data)
        self._writer = ctx.writer(rr_topic, self._wire.response, q.SERVICES_DEFAULT, user_data)
        self.guid = self.reader.guid.bytes
        self.writer_guid = self._writer.guid.bytes
        self._ready_clients: Set[str] = set()

    def dispatch(self) -> int:
        """Serve every waiting request; return how many were answered."""
        count = 0
        for sample in self.reader.take(16):
            if not sample.sample_info.valid_data:
                continue
            try:
                response = self.callback(sample.body, self.srv_type.Response())
            except Exception:  # a failing callback must not take the executor down
                _LOG.exception("service %s: callback raised, no reply sent", self.srv_name)
                continue
            if not isinstance(response, self.srv_type.Response):
                _LOG.error("service %s: callback returned %s, not a %s.Response; no reply",
                           self.srv_name, type(response).__name__, self.srv_type.__name__)
                continue
            self._wait_for_reply_reader(sample.sample_info.publication_handle)
            self._writer.write(self._wire.response(
                guid_=sample.guid_, seq_=sample.seq_, body=prepare(response)))
            count += 1
        return count

    def _wait_for_reply_reader(self, request_writer: int) -> None:
        client_id = user_data_value(
            self.reader.get_matched_publication_data(request_writer), "clientid")
        if client_id is None or client_id in self._ready_clients:
            return
        deadline = time.monotonic() + REPLY_READER_WAIT_S
        while time.monotonic() < deadline:
            for handle in self._writer.get_matched_subscriptions():
                data = self._writer.get_matched_subscription_data(handle)
                if user_data_value(data, "clientid") == client_id:
                    self._ready_clients.add(client_id)
                    return
            time.sleep(0.005)
        _LOG.warning("service %s: reply reader of client %s not matched; replying anyway",
                     self.srv_name, client_id)

    def destroy(self) -> None:
        """Delete the DDS endpoints."""
        self.reader = self._writer = None


class Client:
    """Calls a service; ``call`` blocks on its own reader, so no executor is needed."""

    def __init__(self, node: Any, srv_type: type, name: str) -> None:
        ctx = node.context
        self.srv_type = srv_type
        self.srv_name = name
        self._wire = _service_wire(srv_type)
        rq_topic, rr_topic = dds_service_topic_names(name)
        csid = os.urandom(16)
        user_data = f"clientid={csid_to_string(csid)};"
        self._writer = ctx.writer(rq_topic, self._wire.request, q.SERVICES_DEFAULT, user_data)
        self._reader = ctx.reader(rr_topic, self._wire.response, q.SERVICES_DEFAULT, user_data)
        self.guid = self._reader.guid.bytes
        self.writer_guid = self._writer.guid.bytes
        self._client_id = int.from_bytes(csid[:8], "little")
        self._seq = 0
        self._lock = threading.Lock()
        self._condition = ReadCondition(self._reader, _ANY_NEW)
        self._waitset = WaitSet(ctx.participant)
        self._waitset.attach(self._condition)
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None

    def service_is_ready(self) -> bool:
        """Return whether a server's request reader and reply writer are both matched."""
        return (self._writer.get_publication_matched_status().current_count > 0
                and self._reader.get_subscription_matched_status().current_count > 0)

    def wait_for_service(self, timeout_sec: Optional[float] = None) -> bool:
        """Block until the service is available or ``timeout_sec`` passes (None: forever)."""
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while not self.service_is_ready():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def call(self, request: Any, timeout_sec: Optional[float] = None) -> Any:
        """Send ``request`` and block for the response.

        Raises:
            TimeoutError: no response within ``timeout_sec`` seconds.
        """
        if not isinstance(request, self.srv_type.Request):
            raise TypeError(f"client {self.srv_name} takes {self.srv_type.__name__}.Request, "
                            f"got {type(request).__name__}")
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._writer.write(
                self._wire.request(guid_=self._client_id, seq_=seq, body=prepare(request)))
            deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
            while True:
                for sample in self._reader.take(16):
                    if (sample.sample_info.valid_data and sample.guid_ == self._client_id
                            and sample.seq_ == seq):
                        return sample.body
                left = 1.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"service {self.srv_name} did not answer within {timeout_sec} s")
                self._waitset.wait(duration(seconds=min(left, 1.0)))

    def call_async(self, request: Any) -> "concurrent.futures.Future":
        """Send ``request`` from a worker thread; the future holds the response."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"client{self.srv_name}")
        return self._pool.submit(self.call, request)

    def destroy(self) -> None:
        """Delete the DDS endpoints and the worker thread, if any."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._waitset = self._condition = None
        self._reader = self._writer = None
