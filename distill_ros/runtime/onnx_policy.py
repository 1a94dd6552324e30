"""The deployable policy: one ONNX file whose metadata says everything needed to run it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np

from distill_ros.export.metadata import PolicyMetadata
from distill_ros.runtime.session import open_session
from distill_ros.spec import ObsSpec, Spec

#: one observation: a plain array (one-group policies) or arrays by input name
Observation = Union[np.ndarray, Mapping[str, np.ndarray]]


class OnnxPolicy:
    """Physical observation groups -> physical action, normalisation and limits in the graph.

    Inputs are named after the groups (`groups.input_names`; a command group ``c`` has the
    inputs ``c`` and ``c_mask``). A flat policy has one input ``obs``.
    """

    def __init__(self, path: str | Path, want_gpu: bool = True) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, want_gpu)
        self.metadata = PolicyMetadata.from_session(self.session, str(self.path))
        if self.metadata.chunking is not None:
            raise ValueError(f"ONNX file {self.path} is an action-chunk policy; run it with "
                             "distill_ros.runtime.chunked.ChunkedPolicy.from_onnx")
        self.groups: ObsSpec = self.metadata.obs
        self.act_spec: Spec = self.metadata.act
        self.control_rate_hz = self.metadata.control_rate_hz
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != self.metadata.input_names():
            raise ValueError(f"ONNX file {self.path} has inputs {inputs} but its metadata "
                             f"names {self.metadata.input_names()}; export it again")
        self.providers = self.session.get_providers()
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def obs_spec(self) -> Spec:
        """The layout of a one-group policy's flat observation (grouped policies: `groups`)."""
        if not self.groups.is_flat:
            raise ValueError(f"the policy {self.path.name} takes observation groups "
                             f"({self.groups.describe()}), not one vector: use `groups`")
        return self.groups.groups[0].channels

    def act(self, obs: Observation) -> np.ndarray:
        """One sample or a batch of groups -> (act_dim,) or (B, act_dim).

        `obs` is a dict by input name, or a plain array for a one-group policy. A sample is
        unbatched when its arrays have exactly the groups' shapes.
        """
        if not isinstance(obs, Mapping):
            if not self.groups.is_flat:
                raise ValueError(f"the policy {self.path.name} takes observation groups "
                                 f"{list(self.groups.input_names)}: pass a dict of arrays")
            obs = {self.groups.input_names[0]: obs}
        feed = {k: np.asarray(v, dtype=np.float32) for k, v in obs.items()}
        first = self.groups.input_names[0]
        single = first in feed and feed[first].shape == self.groups.input_shapes()[first]
        if single:
            feed = {k: v[None] for k, v in feed.items()}
        if self.groups.is_flat and first in feed and feed[first].shape[-1:] != \
                (self.groups.groups[0].size,):
            spec = self.obs_spec
            raise ValueError(f"observation has {feed[first].shape[-1]} elements, the policy "
                             f"{self.path.name} needs {spec.dim}: {list(spec.names)}")
        self.groups.check_arrays(feed, f"policy {self.path.name}")
        out = self.session.run(None, feed)[0]
        return out[0] if single else out

    def bound_act(self) -> Callable[[Any], np.ndarray]:
        """`act` for one sample in a control loop: no allocation, no name lookup per call.

        The inputs are arrays bound once to the session (ONNX Runtime IO binding); each call
        copies the sample into them and the graph writes the action into a bound output
        array. Takes what `act` takes for one sample (an array for a one-group policy, a dict
        by input name otherwise) and returns the ``(act_dim,)`` action as a view that the
        next call overwrites. Where an input is not float32 or the first output is not
        ``(batch, act_dim)``, the same call goes through ``run`` with reused inputs; the
        returned call's ``io_bound`` says which.
        """
        shapes = self.groups.input_shapes()
        feed = {name: np.zeros((1, *shape), np.float32) for name, shape in shapes.items()}
        run = self._bind(feed)
        if self.groups.is_flat:
            row = feed[self.groups.input_names[0]][0]

            def act(obs: np.ndarray) -> np.ndarray:
                row[...] = obs
                return run()
        else:
            rows = {name: array[0] for name, array in feed.items()}

            def act(obs: Mapping[str, np.ndarray]) -> np.ndarray:
                for name, array in obs.items():
                    rows[name][...] = array
                return run()
        act.io_bound = run.io_bound
        return act

    def _bind(self, feed: dict) -> Callable[[], np.ndarray]:
        """A call that runs the graph on the arrays of `feed`; returns its first output's row."""
        session, first = self.session, self.session.get_outputs()[0]
        if (any(i.type != "tensor(float)" for i in session.get_inputs())
                or first.type != "tensor(float)" or len(first.shape) != 2
                or first.shape[1] != self.act_spec.dim):
            def plain() -> np.ndarray:
                return session.run(None, feed)[0][0]
            plain.io_bound = False
            return plain
        out = np.zeros((1, self.act_spec.dim), np.float32)
        action = out[0]  # one view for every call
        binding = session.io_binding()
        for name, array in feed.items():
            binding.bind_input(name, "cpu", 0, np.float32, list(array.shape), array.ctypes.data)
        binding.bind_output(first.name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)

        # the C session's call: the Python wrapper's per-call checks (graph capture, run
        # options) cost as much as a small MLP after an idle wait; the public call otherwise
        raw, raw_binding = getattr(session, "_sess", None), getattr(binding, "_iobinding", None)
        if hasattr(raw, "run_with_iobinding") and raw_binding is not None:
            def run() -> np.ndarray:
                raw.run_with_iobinding(raw_binding, None)  # reads feed's arrays, writes out
                return action
        else:
            def run() -> np.ndarray:
                session.run_with_iobinding(binding)
                return action
        run.keep, run.io_bound = (feed, out), True  # the bound memory lives as long as run
        return run

    def describe(self) -> str:
        """One line for logs."""
        return (f"{self.path.name}: {self.groups.describe()} -> {self.act_spec.dim} actions at "
                f"{self.control_rate_hz:g} Hz, providers {self.providers}, "
                f"meta {json.dumps({'task_family': self.metadata.task_family})}")
