"""ONNX Runtime sessions: CUDA/TensorRT when present, CPU otherwise, readable errors."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def pick_providers(available: list[str], want_gpu: bool = True) -> list[str]:
    """The execution providers to ask for, fastest first; CPU is always last."""
    chosen = [p for p in _PREFERRED if p in available and (want_gpu or p.startswith("CPU"))]
    return chosen or ["CPUExecutionProvider"]


def open_session(path: str | Path, want_gpu: bool = True, threads: int = 1):
    """Open an ONNX file; a missing, truncated or non-ONNX file stops with its name and a fix."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist; export one with "
                                "`distill-ros export CONFIG`")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = pick_providers(ort.get_available_providers(), want_gpu)
    try:
        session = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as err:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        first = str(err).splitlines()[0][:300]
        raise ValueError(f"ONNX file {path} cannot be loaded ({first}); it is truncated or not "
                         "an ONNX model: export it again") from None
    log.info("loaded %s with %s", path, session.get_providers())
    return session
