"""Students of distill_ros."""
