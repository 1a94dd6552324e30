"""Tasks of distill_ros."""
