"""Test session set-up shared by every test file."""
import os

# pytest -n 2 on two cores: each worker (and each notebook kernel it starts, which inherits the
# environment) gets one thread; OpenMP/BLAS pools of several threads per process would spin
# against each other and slow the suite many times over.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")


import importlib  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

IN_CI = os.environ.get("CI") == "true"

# Property tests: in CI the examples are a fixed function of each test (derandomize), so a red run
# reproduces and a green one is not luck; nothing is read from or written to an example database,
# and a failure prints the blob that replays it (@reproduce_failure). A developer's run draws new
# examples every time and keeps the failing ones in .hypothesis/ (git-ignored) to replay them first.
# HYPOTHESIS_PROFILE=ci (or dev) picks one explicitly, e.g. to reproduce CI's examples locally.
# Both start from hypothesis's "default" profile, not from the current default, which hypothesis itself
# switches to its own "ci" profile when it sees a CI variable.
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, database=None,
                          print_blob=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# hypothesis's defaults: random examples, the local example database
settings.register_profile("dev", parent=settings.get_profile("default"))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev"))


def pytest_collection_modifyitems(items):
    """Mark every test that uses the ``spark`` or ``sqlglot`` fixture ``spark``, and every test that uses the
    ``keras`` fixture ``sequence``.

    ``-m "not spark"`` then selects what runs without the spark extra (.ci/run's plain path) from the
    fixtures the tests use, with no list of files to keep up to date.
    """
    for item in items:
        if {"spark", "sqlglot"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)
        if "keras" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sequence)


def unavailable(message: str, extra: str) -> None:
    """Skip a test whose optional dependency is missing, or fail it under ``CI=true``.

    CI installs the ``extra``: a skipped test there would turn a green run into one that
    never ran the test.
    """
    if IN_CI:
        pytest.fail(f"{message} (CI installs the [{extra}] extra; a skipped test would hide this)")
    pytest.skip(message)


def optional_module(name: str, extra: str):
    """Import ``name``, installed by the ``extra``; :func:`unavailable` when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} is not installed: {exc}", extra)


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on the JAX backend (the ``sequence`` extra): skipped without it locally, a failure under ``CI=true``."""
    try:
        from funnelkit.journeys.lstm import _keras

        return _keras()
    except ImportError as exc:
        unavailable(f"Keras or JAX is not installed: {exc}", "sequence")


@pytest.fixture(scope="session")
def sqlglot():
    """The ``sqlglot`` module (the ``spark`` extra): skipped without it locally, a failure under ``CI=true``."""
    return optional_module("sqlglot", "spark")


@pytest.fixture(scope="session")
def spark():
    """A local[2] Spark session for the Spark engine's tests.

    Without PySpark (or Java) the tests are skipped on a developer's machine, but under
    ``CI=true`` they fail instead: a green CI run always means the Spark tests ran.
    """
    try:
        from funnelkit.engines.spark import spark_session

        session = spark_session("local[2]", {"spark.driver.memory": "2g"})
    except Exception as exc:  # ImportError, a missing Java, a JVM that does not start
        unavailable(f"Spark is not available: {type(exc).__name__}: {exc}", "spark")
    yield session
    session.stop()


ENGINE_PARAMS = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]
"""Every engine of ``funnelkit.engines.ENGINES``, with the mark of its extra."""


@pytest.fixture(params=ENGINE_PARAMS)
def engine(request):
    """Each engine of ``funnelkit.engines.ENGINES`` in turn, empty: build logs on it with
    ``EventLog.from_frame(frame, engine)``, and a test runs on every engine. A new engine adds
    its name to :data:`ENGINE_PARAMS` and how to make it empty below (``test_engines.py`` checks the list
    is the registry).

    The Spark one runs in the ``spark`` session fixture (marked ``spark``, skipped without PySpark
    on a developer's machine, a failure under ``CI=true``); what it makes is dropped afterwards.
    """
    if request.param == "spark":
        from funnelkit.engines.spark import SparkEngine

        made = SparkEngine(request.getfixturevalue("spark"))
    else:
        from funnelkit.engines.duckdb import DuckDBEngine

        made = DuckDBEngine()
    yield made
    made.close()


@pytest.fixture(scope="session")
def ci_reports(tmp_path_factory):
    """Every notebook run once on params/ci.yaml (DuckDB), shared by the pytest-xdist workers.

    tests/test_notebooks.py checks these reports, and the Spark tests compare their own runs with
    them: the first worker to ask runs the notebooks under a file lock, the others wait and reuse the
    folder (the temporary root above each worker's own is common to all of them). Every worker that asks
    takes the run's pseudonym key, so its own runs write the same pseudonyms into their files.
    """
    import fcntl
    import secrets
    from pathlib import Path

    from funnelkit import runner
    from funnelkit.pseudonym import DEFAULT_KEY_ENV

    shared = tmp_path_factory.getbasetemp().parent
    folder, done, key = (shared / f"ci-reports{suffix}" for suffix in ("", ".done", ".key"))
    with open(shared / "ci-reports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not key.exists():
            key.write_text(secrets.token_hex(32))
        os.environ[DEFAULT_KEY_ENV] = key.read_text()
        if not done.exists():
            root = Path(__file__).resolve().parents[1]
            summary = runner.run(root / "params" / "ci.yaml", jobs=2, notebooks_dir=root / "notebooks",
                                 reports_dir=folder, progress=False)
            assert summary.ok, summary
            done.touch()
    return folder
