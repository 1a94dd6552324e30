"""Distillation algorithms. A new one is one module plus its name in `ALGORITHMS`."""

ALGORITHMS = ("offline",)
