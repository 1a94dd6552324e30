"""The ``rcl_interfaces`` parameter services of one DDS-backend node."""

from typing import Any, List

from distill_ros.ros._dds.parameters import Parameter, ParameterType

_SERVICES = ("get_parameters", "get_parameter_types", "set_parameters",
             "set_parameters_atomically", "list_parameters", "describe_parameters")
_SRV_TYPES = {
    "get_parameters": "GetParameters", "get_parameter_types": "GetParameterTypes",
    "set_parameters": "SetParameters", "set_parameters_atomically": "SetParametersAtomically",
    "list_parameters": "ListParameters", "describe_parameters": "DescribeParameters",
}


class ParameterServices:
    """Serves a node's parameters under ``<node>/<service>`` as rclpy does."""

    def __init__(self, node: Any) -> None:
        self._node = node
        types = node.context.types
        self._value_cls = types.struct("rcl_interfaces/msg/ParameterValue")
        self._descriptor_cls = types.struct("rcl_interfaces/msg/ParameterDescriptor")
        self._result_cls = types.struct("rcl_interfaces/msg/SetParametersResult")
        for service in _SERVICES:
            srv_type = types.service(f"rcl_interfaces/srv/{_SRV_TYPES[service]}")
            node.create_service(srv_type, f"~/{service}", getattr(self, "_" + service))

    def _store(self) -> Any:
        return self._node._parameters

    def _get_parameters(self, request: Any, response: Any) -> Any:
        store = self._store()
        response.values = [
            (store.get(n) if store.has(n) else Parameter(n)).to_value_msg(self._value_cls)
            for n in request.names]
        return response

    def _get_parameter_types(self, request: Any, response: Any) -> Any:
        store = self._store()
        response.types = [
            int(store.get(n).type_) if store.has(n) else 0 for n in request.names]
        return response

    def _incoming(self, request: Any) -> List[Parameter]:
        return [Parameter.from_value_msg(p.name, p.value) for p in request.parameters]

    def _set_parameters(self, request: Any, response: Any) -> Any:
        store = self._store()
        response.results = [store.set_atomically([p]) for p in self._incoming(request)]
        return response

    def _set_parameters_atomically(self, request: Any, response: Any) -> Any:
        response.result = self._store().set_atomically(self._incoming(request))
        return response

    def _list_parameters(self, request: Any, response: Any) -> Any:
        names = self._store().names()
        depth = request.depth
        selected = []
        for name in names:
            prefix = next((p for p in request.prefixes if name.startswith(p + ".")), None)
            if request.prefixes and prefix is None and name not in request.prefixes:
                continue
            rest = name[len(prefix) + 1:] if prefix else name
            if depth and rest.count(".") >= depth:
                continue
            selected.append(name)
        response.result.names = selected
        response.result.prefixes = sorted({n.rsplit(".", 1)[0] for n in selected if "." in n})
        return response

    def _describe_parameters(self, request: Any, response: Any) -> Any:
        store = self._store()
        response.descriptors = [
            store.describe(n) if store.has(n)
            else self._descriptor_cls(name=n, type=int(ParameterType.NOT_SET))
            for n in request.names]
        return response
