"""What every training task shares: token ids on a device, JSON-able RNG states, and a
block that draws from the global generator without moving it (so that evaluation and
sampling never change the batches or dropout masks of the run around them)."""
from .. import creation
from ..creation import get_rng_state, set_rng_state


def _py_rng_state(rng):
    """A random.Random state as JSON-able lists."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_py_rng_state(rng, state):
    """Inverse of _py_rng_state (JSON and tga.save may hand tuples back as lists)."""
    version, internal, gauss = state
    rng.setstate((int(version), tuple(int(i) for i in internal), gauss))


class _RNGNeutral:
    """Run a block with the global generator seeded, then restore its previous state."""

    def __init__(self, seed):
        self.seed = seed

    def __enter__(self):
        self.saved = get_rng_state()
        creation.manual_seed(self.seed)

    def __exit__(self, *exc):
        set_rng_state(self.saved)
        return False


def _ids(rows, device):
    """A list of equal-length id lists -> an int64 tensor on device."""
    return creation.tensor(rows, device=device)
