"""Entry functions a CLI calls: pretrain, finetune, export (and the online loop they share)."""
