"""The one base class of errors a user can act on: the CLI prints their message, never a traceback."""


class SleeveError(Exception):
    """Something about the input, the weights or an index that the user can fix; the message says how."""


class QueryError(SleeveError):
    """The query cannot be answered as asked (unreadable cover, unknown genre or column, no text to match)."""
