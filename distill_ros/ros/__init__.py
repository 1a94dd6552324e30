"""Ros of distill_ros."""
