"""The reports benchmark reads per-cell times from executed notebooks and judges them against the targets."""
import nbformat

from benchmarks import reports


def executed_notebook(path, durations):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Question")]
    for i, seconds in enumerate(durations):
        cell = nbformat.v4.new_code_cell(f"import x\n\nfrom y import z\n\nslow_call_{i}()")  # blank lines: skipped
        cell.metadata["papermill"] = {"duration": seconds}
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_cell_times_sum_every_code_cell_and_list_the_slowest_first(tmp_path):
    times = reports.cell_times(executed_notebook(tmp_path / "01.ipynb", [0.5, 7.25, None, 2.0]), top=2)
    assert times["seconds"] == 9.75
    assert [(c["cell"], c["seconds"], c["code"]) for c in times["slowest"]] == [(2, 7.25, "slow_call_1()"),
                                                                              (4, 2.0, "slow_call_3()")]


def test_a_notebook_over_its_target_says_by_how_much():
    assert reports.verdict(14.9, 15.0) == "✓"
    assert reports.verdict(47.2, 15.0) == "✗ +32 s"
    assert reports.verdict(47.2, None) == "–"


def test_the_enlarged_shop_keeps_the_shipped_cache_and_changes_only_the_users(tmp_path):
    import yaml

    raw = yaml.safe_load(reports.shop_params("1M", tmp_path).read_text())
    shipped = yaml.safe_load(reports.SHOPS["default"][0].read_text())
    assert raw["simulation"]["n_users"] == 1_000_000
    assert raw["simulation"]["cache_dir"].endswith("data/simulated")
    assert {k: v for k, v in raw.items() if k != "simulation"} == {k: v for k, v in shipped.items() if k != "simulation"}
