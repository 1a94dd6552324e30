"""Distill of distill_ros."""
