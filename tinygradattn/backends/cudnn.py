"""torch.backends.cudnn: there is no cuDNN here; its flags can be set (scripts set them) and
change nothing."""

allow_tf32 = True        # torch's defaults
benchmark = False
deterministic = False
enabled = True


def is_available():
    """False: tinygradattn does not use cuDNN."""
    return False


def version():
    return None
