"""The one exception type of `data_prep`, and how its messages quote other errors."""


class DataPrepError(Exception):
    """Bad input or a refused operation.

    The message is one line that names the file or argument at fault and says what to do; the CLI
    prints it and exits with status 2.
    """


def first_line(error: BaseException) -> str:
    """The first line of an error's message (or its type name), to quote a library's error in one line."""
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
