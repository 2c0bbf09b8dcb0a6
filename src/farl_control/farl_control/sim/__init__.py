"""The simulated FR3: franky-sim (MuJoCo) with the task objects, served as the sim_robot node."""
