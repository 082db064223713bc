"""tga.linalg: torch.linalg's vector_norm (the matrix functions are not here)."""
from .tensor import Tensor


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector norm of order ord over dim, all elements by default
    (torch.linalg.vector_norm): sum(|x|^ord)^(1/ord); inf is max |x|, -inf min |x|, 0 the
    count of non-zeros. Differentiable, with torch's gradient (0 where the norm is 0).

        >>> import tinygradattn as tga
        >>> tga.linalg.vector_norm(tga.tensor([3., -4.]))
        tensor(5.)
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.vector_norm(): argument 'x' must be Tensor, not "
                        f"{type(x).__name__}")
    return x._vector_norm("linalg.vector_norm", ord, dim, keepdim, dtype)
