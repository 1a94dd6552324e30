"""Export of distill_ros."""
