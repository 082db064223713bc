"""Running PyTorch programs unmodified: `torch` resolved to tinygradattn.

    hook.py      the import hook: `import torch`, `import torch.nn.functional as F`,
                 `from torch.utils.data import DataLoader` find tinygradattn's modules
    runner.py    `tinygradattn run SCRIPT [ARGS...]`: a script run under the hook, a missing
                 name reported in one line
    coverage.py  `tinygradattn run --check SCRIPT_OR_FOLDER`: the torch names a program uses
                 and which of them tinygradattn lacks
"""
