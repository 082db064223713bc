"""What each rank runs under `mpiexec -n 2 python -m mpi4py cli_cuda.py OUT` with the CUDA
simulator (launched by test_mpi_cuda.py): `tinygradattn train --device cuda` on the
digit-reversal task, 2 steps, its held-out set and report cut to a few items as
tests/cuda/test_cuda_training.py does (the simulator runs every GPU thread in Python)."""
import sys

from tinygradattn import cli
from tinygradattn.tasks import seq2seq


def main(out):
    init, report = seq2seq.DigitsTask.__init__, seq2seq.Seq2SeqTask.report
    seq2seq.DigitsTask.__init__ = lambda self, *a, **kw: init(self, *a, **{**kw, "n_test": 2,
                                                                             "max_digits": 3})
    seq2seq.Seq2SeqTask.report = lambda self, model, out_dir: report(self, model, out_dir, 2, 1)
    sys.setswitchinterval(1e-4)                          # tests/cuda/conftest.py's reason
    return cli.main(["train", "--task", "reverse", "--device", "cuda", "--steps", "2",
                     "--n-layer", "1", "--d-model", "8", "--n-head", "2", "--batch-size", "2",
                     "--log-interval", "1", "--eval-interval", "100", "--no-progress",
                     "--out", out])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
