"""Random numbers on the device (being written)."""

class Philox:
    def seed(self, seed):
        self._seed = seed      # placeholder until the generator lands
