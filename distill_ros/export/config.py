"""Settings of the `export` section: ONNX export and its parity check."""

from __future__ import annotations

from dataclasses import dataclass

from distill_ros.checks import in_range, positive

MIN_OPSET, MAX_OPSET = 13, 20  # 20: the newest the TorchScript exporter writes; 13+ tested


@dataclass
class ExportConfig:
    """ONNX export and its parity check."""

    parity_tol: float = 1e-4    # max |ONNX Runtime - torch| on the same inputs
    opset: int = 17

    def __post_init__(self) -> None:
        positive("export", parity_tol=self.parity_tol)
        in_range("export.opset", self.opset, MIN_OPSET, MAX_OPSET)
