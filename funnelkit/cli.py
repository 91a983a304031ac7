"""The ``funnelkit`` command: parses arguments and calls the runner.

``funnelkit run [--params FILE] [--only NAME ...] [--jobs N] [--reports DIR] [--notebooks DIR]``
executes the notebooks and writes ``reports/``; ``funnelkit validate [--params FILE]``
checks a params file and prints it resolved (every default filled in) as YAML,
after comment lines with the funnel window in words and, when the params name a
data source, the loaded time range (the data is loaded and checked as ``run``
checks it before any notebook starts). Warnings go to stderr.

Exit status: 0 on success, 1 when a notebook failed (the index is still
written), 2 for the user's mistakes (a :class:`~funnelkit.errors.FunnelkitError`
printed as ``funnelkit: error: <message>``, or bad arguments), 128 + the signal
number when SIGINT (130) or SIGTERM (143) stopped a run. Any other exception is
a bug of ours and shows its traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .errors import FunnelkitError

DEFAULT_PARAMS = Path("params") / "default.yaml"


def _params_path(value: str | None) -> Path:
    """The params file given, or ``params/default.yaml`` (here, else in the project folder)."""
    if value is not None:
        return Path(value)
    if DEFAULT_PARAMS.is_file():
        return DEFAULT_PARAMS
    from .runner import project_root

    candidate = project_root() / DEFAULT_PARAMS
    return candidate if candidate.is_file() else DEFAULT_PARAMS


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funnelkit",
        description="Run the funnelkit notebooks headless and write HTML reports.",
    )
    parser.add_argument("--version", action="version", version=f"funnelkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    params_help = "params file (YAML); default: params/default.yaml"
    run = commands.add_parser("run", help="execute the notebooks and write reports/",
                              description="Execute the notebooks with a params file and write reports/.")
    run.add_argument("--params", metavar="FILE", help=params_help)
    run.add_argument("--only", metavar="NAME", nargs="+", action="extend",
                     help="run only these notebooks (name, with or without .ipynb, or a prefix such as 01)")
    run.add_argument("--jobs", "-j", metavar="N", type=_positive_int, default=1,
                     help="notebooks to execute at once (default: 1)")
    run.add_argument("--reports", metavar="DIR", help="output folder (default: reports/ of the project)")
    run.add_argument("--notebooks", metavar="DIR", help="notebooks folder (default: notebooks/ of the project)")
    run.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")

    validate = commands.add_parser("validate", help="check a params file and print it resolved, as YAML",
                                   description="Check a params file and print it with every default filled in.")
    validate.add_argument("--params", metavar="FILE", help=params_help)
    return parser


def _run(args: argparse.Namespace) -> int:
    from .runner import run

    summary = run(
        _params_path(args.params),
        only=args.only,
        jobs=args.jobs,
        notebooks_dir=args.notebooks,
        reports_dir=args.reports,
        progress=not args.no_progress,
    )
    index = os.path.relpath(summary.index_path) if summary.index_path.is_relative_to(Path.cwd()) else summary.index_path
    if summary.ok:
        print(f"funnelkit: {len(summary.runs)} notebook(s) ok; index: {index}")
        return 0
    failed = ", ".join(r.name for r in summary.failed)
    print(f"funnelkit: {len(summary.failed)} of {len(summary.runs)} notebook(s) failed ({failed}); index: {index}",
          file=sys.stderr)
    return 1


def _validate(args: argparse.Namespace) -> int:
    from .params import describe_duration, load_params
    from .preflight import params_warnings, preflight

    path = _params_path(args.params)
    params = load_params(path)
    lines = [f"# funnel window: {describe_duration(params.funnel.window)}"]
    if not params.simulated:  # the built-in shop is checked by the simulator, and costly to generate
        summary = preflight(params, sys.stderr)
        if summary is not None:
            lines.append(f"# data: {summary.describe()}")
    else:
        for note in params_warnings(params):
            print(f"funnelkit: warning: {note}", file=sys.stderr)
    print(f"# {path}: valid; resolved parameters:")
    print("\n".join(lines))
    print(params.to_yaml(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``funnelkit`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or bad arguments (argparse printed why)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from .runner import RunInterrupted

    try:
        return _run(args) if args.command == "run" else _validate(args)
    except FunnelkitError as exc:
        print(f"funnelkit: error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        print(f"funnelkit: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:  # before or after the notebooks: nothing half-written to clean up
        print("funnelkit: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
