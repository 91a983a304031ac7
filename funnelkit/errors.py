"""One family of errors for the user's mistakes.

The CLI prints a :class:`FunnelkitError` as one line (the user can act on it)
and lets every other exception show its traceback (a bug of ours).
"""


class FunnelkitError(Exception):
    """Base class for errors caused by the user's data or parameters."""


class ParamsError(FunnelkitError):
    """A parameter file or argument is invalid."""


class SchemaError(FunnelkitError):
    """Event data does not match the expected schema (columns, types, values)."""


class DataError(FunnelkitError):
    """Event data is readable but its content is unusable (empty, unparsable...)."""
