"""Training: one seeded, resumable trainer; checkpoints; torchrun/DDP support."""

from topoprune.training.trainer import TrainConfig, Trainer, TrainResult, evaluate, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "evaluate", "train"]
