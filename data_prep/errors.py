"""The one exception type of `data_prep`: for the data a command is given and the data it builds."""


class DataError(ValueError):
    """Bad input, a dataset that cannot be found or used, or a refused operation.

    The message is one line that names the file or argument at fault and says what to do; every command prints it
    and exits with status 2.
    """


# The name this type had while building and resolving data raised two types; kept so callers' `except` still works.
DataPrepError = DataError
