"""Errors of the query side and the one-line description of any error; their base,
:class:`index.errors.SleeveError`, is what the CLI catches."""

import errno

from index.errors import SleeveError


class QueryError(SleeveError):
    """The query cannot be answered as asked (unreadable cover, unknown genre or column, no text to match)."""


def describe_error(error: BaseException) -> str:
    """One line for an error sleeve did not anticipate: what failed, on which file, and what to do."""
    text = (str(error).strip().splitlines() or [""])[0][:300]
    if isinstance(error, OSError) and error.errno == errno.ENOSPC or "disk is full" in text:
        where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
        return f"disk full{where}; free some space and run again (finished work is kept)"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, SleeveError):
        return text
    return f"{type(error).__name__}: {text} (run with -v for the traceback)"
