"""The project kernel: installed when missing, another environment's kernel is an error."""
import json
import sys

import pytest

from funnelkit import kernel
from funnelkit.errors import FunnelkitError


def test_kernel_argv_matching():
    assert kernel._runs_this_interpreter(sys.executable)
    assert kernel._runs_this_interpreter("python")
    assert not kernel._runs_this_interpreter("/opt/elsewhere/bin/python")


def test_missing_kernel_is_installed_into_sys_prefix(monkeypatch):
    import ipykernel.kernelspec

    installed, found = [], iter([None, type("Spec", (), {"argv": [sys.executable], "resource_dir": "x"})()])
    monkeypatch.setattr(kernel, "_find_kernel", lambda: next(found))
    monkeypatch.setattr(ipykernel.kernelspec, "install", lambda **kw: installed.append(kw))
    assert kernel.ensure_kernel() == "funnelkit"
    assert installed == [{"kernel_name": "funnelkit", "prefix": sys.prefix, "display_name": "Python (funnelkit)"}]


def test_kernel_of_another_environment_taking_precedence_is_an_error(tmp_path, monkeypatch):
    import ipykernel.kernelspec

    spec = tmp_path / "kernels" / "funnelkit"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/opt/other-env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (funnelkit)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setattr(ipykernel.kernelspec, "install", lambda **kw: None)  # leave the real env alone
    with pytest.raises(FunnelkitError, match="/opt/other-env/bin/python.*jupyter kernelspec remove funnelkit"):
        kernel.ensure_kernel()
