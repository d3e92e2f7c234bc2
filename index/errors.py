"""The one base class of errors a user can act on: the CLI prints their message, never a traceback.

It lives on the ground floor so that the index store and every layer above it raise the same kind.
"""


class SleeveError(Exception):
    """Something about the input, the weights or an index that the user can fix; the message says how."""
