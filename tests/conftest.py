"""Test session set-up shared by every test file."""
import os

# pytest -n 2 on two cores: each worker (and each notebook kernel it starts, which inherits the
# environment) gets one thread; OpenMP/BLAS pools of several threads per process would spin
# against each other and slow the suite many times over.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
