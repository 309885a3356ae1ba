"""The one exception type that the command line turns into a one-line error.

Library code raises :class:`HwsimError` (or a subclass) with a message that names the bad input
and how to fix it; only :func:`hwsim.cli.main` catches it and turns it into an exit code.
"""


class HwsimError(ValueError):
    """Bad user input: unknown names, malformed configuration, impossible mappings."""
