"""How sleeve's command line talks: one-line errors with meaningful exit codes, tables and JSON on stdout, and
option groups declared once.

Exit codes: 0 success, 1 an error sleeve explains (bad input, missing weights, index mismatch, a damaged file, a
full disk), 2 a usage error, 130 interrupted (Ctrl-C or SIGTERM). ``-v`` shows the traceback of an error.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click


def option_group(into: str, make: Callable[..., Any], *options: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a group of options once; the command receives one argument ``into``, made by ``make`` from them."""
    probe: Callable[..., Any] = lambda: None  # noqa: E731 - click hangs the declared parameters on it
    for option in options:
        probe = option(probe)
    names = [param.name for param in probe.__click_params__]  # type: ignore[attr-defined]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            return command(**kwargs, **{into: make(**values)})

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error into one line on stderr and exit code 1 (-v adds the traceback); Ctrl-C and
    SIGTERM into exit code 130, finished work saved. Outermost below the command, so that it also covers
    what option groups make of the options."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from index.errors import SleeveError
        from recsys.errors import describe_error

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except SleeveError as error:
            _fail(str(error), error)
        except KeyboardInterrupt:
            click.echo("interrupted: finished batches are saved; run the same command again to resume", err=True)
            sys.exit(130)
        except Exception as error:  # noqa: BLE001 - the one place where any failure becomes one line
            _fail(describe_error(error), error)

    return wrapper


def _interrupt(signum: int, frame: Any) -> None:
    """SIGINT and SIGTERM stop a command at once, keeping what is finished. SIGINT is set explicitly too: a
    shell starts a background job (``sleeve build-index ... &`` in a script) with SIGINT ignored, and Python
    keeps that, so ``kill -INT`` would otherwise be lost."""
    raise KeyboardInterrupt


def _fail(message: str, error: BaseException) -> None:
    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().params.get("verbose"):
        traceback.print_exception(error, file=sys.stderr)
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(frame: Any) -> None:
    """A DataFrame as aligned text: numbers right-aligned, text (genre, path, metadata) left-aligned."""
    import pandas as pd

    text = {
        column: frame[column].fillna("").astype(str)
        for column in frame
        if not pd.api.types.is_numeric_dtype(frame[column])
    }
    width = {column: max(len(column), int(values.str.len().max())) for column, values in text.items()}
    frame = frame.assign(**{column: values.str.ljust(width[column]) for column, values in text.items()})
    lines = frame.rename(columns={column: column.ljust(width[column]) for column in text}).to_string(index=False)
    click.echo("\n".join(line.rstrip() for line in lines.splitlines()))


def print_results(answer: dict[str, Any], results: Any, as_json: bool, heading: str | None = None) -> None:
    """One query's results: a table (headed by the query when there are several), an indented JSON object
    for a single query, or one JSON line per query."""
    if as_json:
        if heading is None:
            print_json(answer)
        else:
            click.echo(json.dumps(answer, default=str))
        return
    if heading is not None:
        click.echo(f"query: {heading}")
    if results.empty:
        click.echo("no results")
    else:
        print_table(results)
    if heading is not None:
        click.echo()
