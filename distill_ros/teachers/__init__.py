"""Teachers of distill_ros."""
