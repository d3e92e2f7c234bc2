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
from collections.abc import Callable, Iterable
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


def print_results(
    answer: dict[str, Any], results: Any, as_json: bool, heading: str | None = None, empty: str = "no results"
) -> None:
    """One query's results: a table (headed by the query when there are several; ``empty`` when there are
    none), an indented JSON object ``answer`` for a single query, or one JSON line per query."""
    if as_json:
        if heading is None:
            print_json(answer)
        else:
            click.echo(json.dumps(answer, default=str))
        return
    if heading is not None:
        click.echo(f"query: {heading}")
    if results.empty:
        click.echo(empty)
    else:
        print_table(results)
    if heading is not None:
        click.echo()


def print_outcome(data: Any, text: str | list[str], as_json: bool) -> None:
    """What a command did: ``data`` as JSON with --json, else ``text`` (lines) for a person."""
    if as_json:
        print_json(data)
    else:
        click.echo(text if isinstance(text, str) else "\n".join(text))


def print_answers(answerer: Any, covers: Iterable[str], as_json: bool, **query: Any) -> int:
    """Answer each query cover (files, or folders of covers) with ``answerer`` (recsys.answer.QueryAnswerer)
    and print each answer as it comes: a bad cover is one error line on stderr and the others are answered.
    Returns how many covers failed; a single cover that fails raises its error instead."""
    from recsys.answer import cover_files
    from recsys.classify.predict import query_line
    from recsys.errors import QueryError

    covers = list(covers)
    paths, folder_errors = cover_files(covers)
    several = len(covers) > 1 or len(paths) != 1 or bool(folder_errors)
    for message in folder_errors:
        click.echo(f"error: {message}", err=True)
    for message in answerer.warnings:
        click.echo(f"warning: {message}", err=True)
    failed = len(folder_errors)
    for answer in answerer.answer_each(paths, **query):
        for message in answer.warnings:
            click.echo(f"warning: {message}", err=True)
        if answer.error is not None:
            if not several:
                raise QueryError(answer.error)
            click.echo(f"error: {answer.error}", err=True)
            failed += 1
            continue
        if answer.prediction is not None and not as_json:
            click.echo(query_line(answer.prediction), err=True)
        print_results(answer.to_dict(), answer.results, as_json, heading=answer.cover if several else None)
    return failed


def print_cover_texts(results: list[dict[str, Any]], as_json: bool) -> int:
    """read-text's output: each cover's lines with the recogniser's confidence (or JSON), and an error line
    on stderr for each cover that could not be read. Returns how many could not be read."""
    if as_json:
        print_json(results)
    for result in results:
        if "error" in result:
            click.echo(f"error: cannot read {result['cover']}: {result['error']}", err=True)
        elif not as_json:
            click.echo(f"{result['cover']}:")
            for line in result["lines"] or [{"text": "(no text found)", "score": None}]:
                score = "" if line["score"] is None else f"{line['score']:.2f}  "
                click.echo(f"  {score}{line['text']}")
    return sum("error" in result for result in results)
