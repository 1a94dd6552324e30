"""DDS backend: ROS 2 on Eclipse Cyclone DDS without a ROS install."""
