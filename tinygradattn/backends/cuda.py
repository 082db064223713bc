"""torch.backends.cuda: `matmul.allow_tf32` and the attention kernel switches, remembered but
without effect (our CUDA GEMM computes in full float32 and our attention is one kernel)."""


class _MatmulSettings:
    """torch.backends.cuda.matmul: allow_tf32 (default False, as torch),
    allow_fp16_reduced_precision_reduction; both must be bools."""

    def __init__(self):
        self.__dict__["allow_tf32"] = False
        self.__dict__["allow_fp16_reduced_precision_reduction"] = True

    def __setattr__(self, name, value):
        if name not in self.__dict__:
            raise AttributeError(f"torch.backends.cuda.matmul has no setting {name!r}: known "
                                 f"are {', '.join(sorted(self.__dict__))}")
        if not isinstance(value, bool):
            raise TypeError(f"torch.backends.cuda.matmul.{name} must be a bool, got "
                            f"{type(value).__name__}")
        self.__dict__[name] = value


matmul = _MatmulSettings()


def is_built():
    """True: the cuda device exists in this build (whether a GPU is there is
    tga.cuda.is_available())."""
    return True


def flash_sdp_enabled():
    return True


def mem_efficient_sdp_enabled():
    return True


def math_sdp_enabled():
    return True


def enable_flash_sdp(enabled):
    """Accepted; scaled_dot_product_attention always runs our one tiled kernel."""


enable_mem_efficient_sdp = enable_math_sdp = enable_flash_sdp
