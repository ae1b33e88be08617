"""The command line: a thin Typer layer, one verb per stage, each a call of the public API.

Heavy imports (onnxruntime, torch, dask, matplotlib) happen inside the command that needs them,
so ``vertebrafat --help`` starts fast. Every :class:`~vertebrafat.errors.VertebrafatError` becomes
one line on stderr and exit code 2; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vertebrafat.errors import VertebrafatError

app = typer.Typer(
    name="vertebrafat",
    help="Lumbar vertebral bone marrow fat fraction from water-fat MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Lumbar vertebral bone marrow fat fraction (BMF) from water-fat MRI.

    Example: vertebrafat segment /data/sub01/dicom out/sub01
    """


def emit(obj: Any, *, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON (``--json``) or ``text`` for people."""
    if as_json:
        typer.echo(json.dumps(obj, indent=2, default=_json_default))
    elif text is not None:
        typer.echo(text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---- commands (each section owned by one module; keep them ~10 lines) ----------------------

# [io commands]

# [phantom commands]

# [segment commands]

# [measure commands]

# [validation commands]

# [cohort commands]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="vertebrafat", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except VertebrafatError as exc:
        if "--debug" in args:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    return 0


def run() -> None:
    """Console script: exit with :func:`main`'s code."""
    raise SystemExit(main())


if __name__ == "__main__":
    run()
