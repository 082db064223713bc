"""tga.device: torch.device's name, type and index, for code that builds or inspects devices.

    >>> import tinygradattn as tga
    >>> d = tga.device("cuda", 0)
    >>> d, d.type, d.index, str(d)
    (device(type='cuda', index=0), 'cuda', 0, 'cuda:0')

Unlike torch.device, a device IS its string ("cpu", "cuda", "cuda:0"): it compares equal to
it and goes wherever a device string goes, so `tensor.device == "cpu"` keeps working.
"""

_TYPES = ("cpu", "cuda")


class device(str):
    """torch.device(type, index=None) or torch.device("cuda:1")."""

    __slots__ = ("type", "index")

    def __new__(cls, type, index=None):
        if isinstance(type, device) and index is None:
            return type
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string such as 'cpu' or 'cuda:0', got "
                            f"{type.__class__.__name__}")
        kind, sep, number = type.partition(":")
        if sep:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was "
                                   f"passed explicitly: {type}")
            if not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        if kind not in _TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_TYPES)} device type at start of "
                               f"device string: {type}")
        if index is not None:
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise RuntimeError(f"Device index must not be negative, got {index!r}")
            if kind == "cpu" and index != 0:
                raise RuntimeError(f"CPU device index must be -1 or zero, got {index}")
        self = super().__new__(cls, kind if index is None else f"{kind}:{index}")
        self.type = kind
        self.index = index
        return self

    def __repr__(self):
        return (f"device(type='{self.type}')" if self.index is None
                else f"device(type='{self.type}', index={self.index})")

    def __reduce__(self):
        return (device, (self.type, self.index))
