"""The import-time benchmark compares each statement with the baseline and names the heavy libraries it pulls in."""
from benchmarks import imports


def test_the_table_gives_the_ratio_to_the_baseline_and_judges_the_target():
    results = {imports.BASELINE: {"wall": 0.5, "cpu": 0.4, "heavy": []},
               "import funnelkit.funnel": {"wall": 0.7, "cpu": 0.6, "heavy": ["scipy"]},
               "import funnelkit": {"wall": 0.05, "cpu": 0.03, "heavy": []}}
    rows = imports.table(results).splitlines()[2:]
    assert rows[0] == "| `import pandas, duckdb, pydantic` | 0.500 | 0.400 | 1.00× | – | none |"
    assert rows[1] == "| `import funnelkit.funnel` | 0.700 | 0.600 | 1.40× | 1.3× ✗ | scipy |"
    assert rows[2].endswith("| 0.10× | – | none |")


def test_heavy_modules_are_those_the_statement_leaves_imported():
    assert imports.heavy_modules("import json") == []
    assert imports.heavy_modules("import scipy.linalg") == ["scipy"]


def test_funnelkit_funnel_imports_none_of_the_heavy_libraries():
    assert imports.heavy_modules("import funnelkit.funnel") == []


def test_the_metric_recorder_every_notebook_imports_leaves_nbformat_out():
    # nbformat's validation imports jsonschema's format checkers (1.2 s of rfc3987-syntax grammar) into every kernel
    assert imports.heavy_modules("import funnelkit.report") == []
    assert imports.heavy_modules("import funnelkit.report; funnelkit.report.record('x', 1.0)") == []
