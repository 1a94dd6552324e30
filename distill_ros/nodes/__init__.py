"""Nodes of distill_ros."""
