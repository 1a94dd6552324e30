"""rclpy backend: thin adapters over a real ROS 2 install."""
