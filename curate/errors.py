"""Errors a user can act on. The CLI prints them as one line; anything else is a bug."""


class CurateError(Exception):
    """Bad input, bad config or a failed precondition, with a message that says what to do."""


class SchemaError(CurateError):
    """A table does not match its versioned schema in schemas/."""
