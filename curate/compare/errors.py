"""The one error type of `curate compare`: bad input a user can fix, with a one-line message."""

from curate.errors import CurateError


class CompareError(CurateError):
    """A runs table that cannot be read or fitted: missing file or column, malformed values, too few runs."""
