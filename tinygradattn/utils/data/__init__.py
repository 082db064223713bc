"""torch.utils.data: datasets, samplers and the DataLoader, with torch's layout
(`utils.data.dataloader`, `.dataset`, `.sampler`) so `from torch.utils.data.dataloader import
DataLoader` resolves here too (and `torch.utils.data.distributed.DistributedSampler`).

Batches are loaded in the calling process; shuffling draws from tga's generators, so
`tga.manual_seed(s)` makes it reproducible.
"""
from . import distributed
from .collate import default_collate, default_convert
from .dataloader import DataLoader, get_worker_info
from .dataset import (ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
                      random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "distributed", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "get_worker_info", "random_split"]
