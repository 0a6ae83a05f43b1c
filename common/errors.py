"""The one exception type the CLI turns into a clean message and a non-zero exit."""


class UserError(Exception):
    """Bad input a user can fix (unknown key, missing dataset, locked run dir, ...).

    The message is a complete paragraph: what is wrong and what to do about it.
    The CLI prints it without a traceback and exits with status 2.
    """
