"""Training: the Trainer (one loop for every model), atomic checkpoints, and the built-in tasks.

    from tinygradattn.train import Trainer, TrainConfig
    from tinygradattn.train.tasks import make_task
"""
from .trainer import TrainConfig, Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged"]
