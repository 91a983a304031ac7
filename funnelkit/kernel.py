"""The project's Jupyter kernel: papermill must run notebooks in this environment.

In a virtualenv, papermill's default kernel lookup can fail (``NoSuchKernel``)
or start another environment's Python; :func:`ensure_kernel` makes sure a
kernel named ``funnelkit`` exists and runs this interpreter.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import FunnelkitError

KERNEL_NAME = "funnelkit"
KERNEL_DISPLAY_NAME = "Python (funnelkit)"


def _runs_this_interpreter(argv0: str) -> bool:
    """Whether a kernelspec's ``argv[0]`` starts this interpreter.

    jupyter_client replaces a bare ``python``/``python3``/``python3.X`` by
    ``sys.executable``. A path is compared by its folder (symlinks in the folder
    resolved, not the executable itself: a venv's ``bin/python`` links to the
    base interpreter shared by every venv).
    """
    major, minor = sys.version_info[:2]
    if argv0 in {"python", f"python{major}", f"python{major}.{minor}"}:
        return True
    path, ours = Path(os.path.abspath(argv0)), Path(os.path.abspath(sys.executable))
    return path.name.startswith("python") and os.path.realpath(path.parent) == os.path.realpath(ours.parent)


def _find_kernel():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return None


def ensure_kernel() -> str:
    """Make sure the ``funnelkit`` kernel exists and runs this interpreter; return its name.

    If the kernelspec is missing, or the one Jupyter finds starts another
    interpreter, it is (re)installed into ``sys.prefix`` (ipykernel). In a
    virtualenv or conda environment jupyter_core searches ``sys.prefix`` before
    the user's folders, so that fixes it; if a spec that runs another Python
    still takes precedence (``JUPYTER_PATH``, ``JUPYTER_PREFER_ENV_PATH=0``, or no
    virtualenv), a :class:`FunnelkitError` says which spec and how to fix it.
    """
    spec = _find_kernel()
    if spec is not None and spec.argv and _runs_this_interpreter(spec.argv[0]):
        return KERNEL_NAME
    from ipykernel.kernelspec import install

    try:
        install(kernel_name=KERNEL_NAME, prefix=sys.prefix, display_name=KERNEL_DISPLAY_NAME)
    except OSError as exc:
        spec = _find_kernel()  # another process (pytest -n, a parallel run) may have just installed it
        if spec is not None and spec.argv and _runs_this_interpreter(spec.argv[0]):
            return KERNEL_NAME
        raise FunnelkitError(
            f"cannot install the Jupyter kernel {KERNEL_NAME!r} into {sys.prefix} ({exc}); install it with "
            f"`{sys.executable} -m ipykernel install --user --name {KERNEL_NAME} "
            f'--display-name "{KERNEL_DISPLAY_NAME}"`'
        ) from None
    spec = _find_kernel()
    if spec is None or not spec.argv or not _runs_this_interpreter(spec.argv[0]):
        where = spec.resource_dir if spec is not None else "(not found)"
        argv0 = spec.argv[0] if spec is not None and spec.argv else "?"
        raise FunnelkitError(
            f"the Jupyter kernel {KERNEL_NAME!r} found first is {where}, which runs {argv0}, not this "
            f"environment's Python {sys.executable}; notebooks would run in another environment. Remove it "
            f"(`jupyter kernelspec remove {KERNEL_NAME}` from that environment, or delete the folder), or let "
            f"this environment's kernel take precedence (unset JUPYTER_PATH, or set JUPYTER_PREFER_ENV_PATH=1)"
        )
    return KERNEL_NAME


def kernel_config():
    """The kernel manager's configuration for papermill: encrypted kernel sockets where pyzmq can.

    ipykernel 7 logs "Kernel is running over TCP without encryption" to the terminal on every start
    unless the manager provisions CurveZMQ keys, which jupyter_client (8.10+) does under ``auto`` for a
    kernelspec that declares support (ipykernel's does). Older jupyter_client ignores the setting.
    """
    import zmq
    from traitlets.config import Config

    return Config({"KernelManager": {"transport_encryption": "auto"}}) if zmq.has("curve") else Config()
