"""xplus_release.training: the two-stage layer-selective trainer (``xplus-train``).

config.py (recipe models, YAML), dataset.py (chat template, response targets, packing),
layers.py (layer selection and freezing), forward.py (frozen prefix without autograd, response-only
logits, FLOPs), memory.py (checkpointing policy), planner.py (memory per GPU of each distributed
strategy), distributed.py (DDP / FSDP2 wrapping), trainer.py (stages, loop), checkpoint.py (resume through
torch.distributed.checkpoint, output folder), steplog.py (per-step log), analyze.py (Figure 4 and 5 analyses),
toy.py (the Cipher toy task), cli.py (the command). The data pipeline that builds training JSONL is a
separate part of this folder.
"""
