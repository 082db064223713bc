"""tga.backends: torch.backends' switches that training scripts set (TF32, cuDNN, MPS).

They are accepted and remembered so that scripts setting them run; none changes our
results: our GEMMs compute in full float32 (no TF32), and there is no cuDNN or MPS.

    torch.backends.cuda.matmul.allow_tf32 = True    # accepted; float32 stays float32
    torch.backends.cudnn.allow_tf32 = True
"""
from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
