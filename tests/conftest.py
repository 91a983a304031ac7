"""Test session set-up shared by every test file."""
import os

# pytest -n 2 on two cores: each worker (and each notebook kernel it starts, which inherits the
# environment) gets one thread; OpenMP/BLAS pools of several threads per process would spin
# against each other and slow the suite many times over.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    """A local[2] Spark session for the Spark engine's tests.

    Without PySpark (or Java) the tests are skipped on a developer's machine, but under
    ``CI=true`` they fail instead: a green CI run always means the Spark tests ran.
    """
    try:
        from funnelkit.spark import spark_session

        session = spark_session("local[2]", {"spark.driver.memory": "2g"})
    except Exception as exc:  # ImportError, a missing Java, a JVM that does not start
        message = f"Spark is not available: {type(exc).__name__}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ' (CI installs the [spark] extra; a skipped Spark test would hide this)')
        pytest.skip(message)
    yield session
    session.stop()
