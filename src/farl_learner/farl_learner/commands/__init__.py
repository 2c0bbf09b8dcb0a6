"""`farl` subcommands of the learning library (one module each, registered in farl_learner/cli.py).

    farl demos <task> --out DIR                  task + recovery demos (cached .npz)       commands/demos.py
    farl pretrain <task> --data DIR --out DIR    pi_task, pi_rec, world model, eps_safe    commands/pretrain.py
    farl finetune <task> --model DIR --method farl|uni-o4 --steps N --seed S --out DIR   commands/finetune.py
    farl evaluate <task> --model DIR             deterministic episodes, normalized return commands/evaluate.py
    farl export <task> --model DIR --out DIR     ONNX folder + torch-vs-ONNX parity        commands/export.py
    farl bench failurebench                      Uni-O4 vs FARL on FailureBench            commands/bench.py

Shared options (task names, budget profiles, --set overrides): commands/common.py.
Every command writes the config it used and its metrics as JSON next to its outputs.
"""
