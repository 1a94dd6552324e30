"""The process-wide DDS context: one participant, topics, QoS and the ROS graph.

ROS 2 on ``rmw_cyclonedds_cpp`` puts all nodes of a process on one participant
(USER_DATA ``enclave=/;``) and announces which node owns which reader and writer
on the ``ros_discovery_info`` topic; we do the same so ``ros2 node list`` shows
our nodes.
"""

import logging
import threading
from typing import Dict, List, Optional, Tuple

from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsParticipant
from cyclonedds.core import InstanceState
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from distill_ros.ros import qos as q
from distill_ros.ros.dds_config import domain_id, ensure_dds_config
from distill_ros.ros._dds.typegen import get_generator

_LOG = logging.getLogger(__name__)

DISCOVERY_TOPIC = "ros_discovery_info"
_DISCOVERY_QOS = q.QoSProfile(depth=1, durability=q.TRANSIENT_LOCAL)


def to_dds_qos(profile: q.QoSProfile, user_data: str, writer: bool) -> Qos:
    """Convert a profile to Cyclone DDS QoS, with the endpoint's USER_DATA string.

    Writers offer XCDR1 only (what rmw_cyclonedds reads and writes); readers accept
    XCDR1 and XCDR2.
    """
    policies = [Policy.Userdata(data=user_data.encode()),
                Policy.DataRepresentation(use_cdrv0_representation=True,
                                          use_xcdrv2_representation=not writer)]
    if profile.reliability == q.RELIABLE:
        policies.append(Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)))
    else:
        policies.append(Policy.Reliability.BestEffort)
    if profile.durability == q.TRANSIENT_LOCAL:
        policies.append(Policy.Durability.TransientLocal)
    else:
        policies.append(Policy.Durability.Volatile)
    if profile.history == q.KEEP_ALL:
        policies.append(Policy.History.KeepAll)
    else:
        policies.append(Policy.History.KeepLast(depth=profile.depth))
    if profile.lifespan_s is not None:
        policies.append(Policy.Lifespan(lifespan=duration(seconds=profile.lifespan_s)))
    return Qos(*policies)


class Context:
    """Owns the participant and everything shared by the nodes of this process."""

    def __init__(self) -> None:
        ensure_dds_config()
        self.domain_id = domain_id()
        self.types = get_generator()
        self.participant = DomainParticipant(
            self.domain_id, qos=Qos(Policy.Userdata(data=b"enclave=/;")))
        self.lock = threading.RLock()
        self._topics: Dict[Tuple[str, type], Topic] = {}
        self.graph = Graph(self)
        _LOG.debug("DDS participant on domain %d (ROS 2 %s conventions)",
                   self.domain_id, self.types.distro)

    def topic(self, dds_name: str, data_type: type) -> Topic:
        """Return the (cached) topic ``dds_name`` of ``data_type``."""
        with self.lock:
            key = (dds_name, data_type)
            if key not in self._topics:
                self._topics[key] = Topic(self.participant, dds_name, data_type)
            return self._topics[key]

    def writer(self, dds_name: str, data_type: type, profile: q.QoSProfile,
               user_data: str) -> DataWriter:
        """Create a writer on ``dds_name`` with the given QoS and USER_DATA."""
        return DataWriter(self.participant, self.topic(dds_name, data_type),
                          qos=to_dds_qos(profile, user_data, writer=True))

    def reader(self, dds_name: str, data_type: type, profile: q.QoSProfile,
               user_data: str) -> DataReader:
        """Create a reader on ``dds_name`` with the given QoS and USER_DATA."""
        return DataReader(self.participant, self.topic(dds_name, data_type),
                          qos=to_dds_qos(profile, user_data, writer=False))

    def close(self) -> None:
        """Delete the participant and with it every entity of this process."""
        with self.lock:
            self.graph.close()
            self._topics.clear()
            participant, self.participant = self.participant, None
            # Delete now (children go with it in Cyclone) instead of whenever the last
            # Python reference dies; Entity.__del__ is cyclonedds-python's delete.
            participant.__del__()


class Graph:
    """Publishes this process's nodes on ``ros_discovery_info`` and reads everyone's."""

    def __init__(self, ctx: Context) -> None:
        info_type = ctx.types.struct("rmw_dds_common/msg/ParticipantEntitiesInfo")
        self._gid_type = ctx.types.struct("rmw_dds_common/msg/Gid")
        self._node_type = ctx.types.struct("rmw_dds_common/msg/NodeEntitiesInfo")
        self._info_type = info_type
        self.gid_size = len(self._gid_type().data)  # 24 on Humble, 16 from Iron on
        self._participant_gid = self.gid(ctx.participant.guid.bytes)
        self._nodes: List[object] = []
        self._seen: Dict[bytes, object] = {}
        self._lock = threading.Lock()
        self._writer = ctx.writer(DISCOVERY_TOPIC, info_type, _DISCOVERY_QOS, "enclave=/;")
        self._reader = ctx.reader(
            DISCOVERY_TOPIC, info_type, q.QoSProfile(depth=100, durability=q.TRANSIENT_LOCAL),
            "enclave=/;")
        self._participants = BuiltinDataReader(ctx.participant, BuiltinTopicDcpsParticipant)

    def gid(self, guid: bytes) -> object:
        """Return an ``rmw_dds_common/Gid`` holding a 16-byte DDS GUID, zero padded."""
        return self._gid_type(data=guid.ljust(self.gid_size, b"\0")[:self.gid_size])

    def add_node(self, node: object) -> None:
        """Announce ``node`` (anything with ``graph_entry()``)."""
        with self._lock:
            self._nodes.append(node)
        self.publish()

    def remove_node(self, node: object) -> None:
        """Stop announcing ``node``."""
        with self._lock:
            if node in self._nodes:
                self._nodes.remove(node)
        self.publish()

    def publish(self) -> None:
        """Write the current ParticipantEntitiesInfo of this process."""
        with self._lock:
            entries = []
            for node in self._nodes:
                name, namespace, readers, writers = node.graph_entry()
                entries.append(self._node_type(
                    node_namespace=namespace, node_name=name,
                    reader_gid_seq=[self.gid(g) for g in readers],
                    writer_gid_seq=[self.gid(g) for g in writers]))
            info = self._info_type(gid=self._participant_gid, node_entities_info_seq=entries)
            self._writer.write(info)

    def node_names_and_namespaces(self) -> List[Tuple[str, str]]:
        """Return ``(name, namespace)`` of every node seen on the network, ours included."""
        with self._lock:
            for sample in self._reader.take(256):
                if getattr(sample, "gid", None) is not None:
                    self._seen[bytes(sample.gid.data)] = sample
            alive = {p.key.bytes for p in self._participants.read(1024)
                     if p.sample_info.instance_state == InstanceState.Alive}
            found = []
            for gid, info in self._seen.items():
                if gid[:16] not in alive:  # that process has left
                    continue
                found.extend((n.node_name, n.node_namespace) for n in info.node_entities_info_seq)
            return sorted(set(found))

    def close(self) -> None:
        """Announce that this process has no nodes left."""
        with self._lock:
            self._nodes.clear()
        try:
            self.publish()
        except Exception:  # noqa: BLE001 - best effort while tearing down
            _LOG.debug("could not announce graph shutdown", exc_info=True)


_CONTEXT: Optional[Context] = None
_CONTEXT_LOCK = threading.Lock()


def get_context(create: bool = True) -> Optional[Context]:
    """Return the process context, creating it (the ``init()``) when asked."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None and create:
            _CONTEXT = Context()
        return _CONTEXT


def close_context() -> None:
    """Tear the process context down (the ``shutdown()``)."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        ctx, _CONTEXT = _CONTEXT, None
    if ctx is not None:
        ctx.close()
