"""The CLI's last line of defence: every command's errors become one line and an exit code.

Bad input (:class:`InputError`, or a file the system refuses to read or write) exits 2 with
``error: <file>: <problem>``. Any other exception is a bug: one line naming it and the file its
traceback was written to, exit 1; with ``unscene3d --debug`` the traceback is printed instead.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from unscene3d.errors import InputError


def _printable(text: str) -> str:
    # File names that are not UTF-8 reach messages as surrogates, which a terminal cannot print.
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _write_crash_report(error: BaseException) -> Path:
    """Write the command line, versions and traceback to a file in the temp folder; return its path."""
    from importlib.metadata import version

    report = Path(tempfile.gettempdir()) / f"unscene3d-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    lines = [
        f"command: {' '.join(sys.argv)}",
        f"unscene3d {version('unscene3d')}, Python {sys.version.split()[0]}",
        "",
        *traceback.format_exception(error),
    ]
    report.write_text(_printable("\n".join(lines)), encoding="utf-8")
    return report


def report_error(error: Exception, *, debug: bool) -> int:
    """Print one line about ``error``; return the exit code: 2 for bad input, 1 for a bug."""
    if isinstance(error, OSError) and error.filename is not None:
        # A file the system would not let us read or write (permissions, a full disk): not a bug.
        error = InputError(error.filename, error.strerror or str(error))
    if isinstance(error, InputError):
        typer.echo(_printable(f"error: {error}"), err=True)
        return 2
    summary = _printable(f"{type(error).__name__}: {error}".splitlines()[0][:300])
    if debug:
        traceback.print_exception(error)
        typer.echo(f"error: {summary} (this is a bug in unscene3d)", err=True)
    else:
        report = _write_crash_report(error)
        typer.echo(f"error: {summary} -- this is a bug in unscene3d; its traceback is in {report} "
                   "(or run with --debug)", err=True)
    return 1


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with its errors turned into one line (see :func:`report_error`)."""
    signature = inspect.signature(command)

    @functools.wraps(command)
    def run(ctx: typer.Context, **kwargs: Any) -> Any:
        try:
            return command(**kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted; finished outputs are kept and a re-run continues", err=True)
            raise typer.Exit(code=130) from None
        except Exception as error:
            debug = bool((ctx.find_root().obj or {}).get("debug"))
            raise typer.Exit(code=report_error(error, debug=debug)) from None

    ctx_parameter = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), ctx_parameter])
    run.__annotations__ = {**command.__annotations__, "ctx": typer.Context}
    return run
