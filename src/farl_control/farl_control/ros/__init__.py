"""rclpy plumbing shared by the nodes and tools: main(), spin thread, message conversions, the robot client."""
