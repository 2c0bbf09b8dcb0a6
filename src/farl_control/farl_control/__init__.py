"""farl_control: the robot side of FARL (no torch; no MuJoCo on the real-arm path).

One sub-package per job, each node next to the pure logic it uses:

    robot/      the arm driver: franka_node, the franky arm interface, the command filter
    sim/        the simulated FR3: sim_robot_node, the franky-sim MuJoCo scene
    shield/     the safety shield: shield_node, its ONNX runtime, model folders, rviz markers
    episodes/   episode_monitor_node and the episode bookkeeping it uses
    launching/  the stack description, `farl launch`, child processes that die with their launcher
    ros/        rclpy plumbing shared by the nodes: main(), spin thread, message conversions, client

Configuration, topic names, QoS and payload schemas live in `farl_common`.
"""
