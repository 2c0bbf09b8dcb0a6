"""Entry functions a CLI calls, each writing a config + metrics JSON next to its outputs.

    pretrain(task, data_dir, out_dir, cfg)                   -> pretrain.json  (training/pretrain.py)
    finetune(task, model_dir, out_dir, method, steps, seed)  -> finetune.json  (training/finetune.py)
    export(task, model_dir, onnx_dir, cfg, policy_dir)       -> export.json    (training/export.py)

The online loop they share (FARL with the shield, Uni-O4 without) is
training/online.py; training/toy.py is a 1-D stand-in task for tests.
"""
