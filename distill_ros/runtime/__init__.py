"""Runtime of distill_ros."""
