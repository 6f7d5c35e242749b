"""The one exception type of `data_prep`."""


class DataPrepError(Exception):
    """Bad input or a refused operation.

    The message is one line that names the file or argument at fault and says what to do; the CLI
    prints it and exits with status 2.
    """

