"""Training: the Trainer (one loop for every model) and atomic checkpoints.

    from tinygradattn.train import Trainer, TrainConfig
    from tinygradattn.tasks import make_task          # the built-in tasks it runs
"""
from .trainer import TrainConfig, Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged"]
