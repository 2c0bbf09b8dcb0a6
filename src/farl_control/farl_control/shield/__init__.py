"""The FARL safety shield: the actor node, its ONNX Runtime core, model folders and rviz markers."""
