"""The one error type of the evaluation tools; the CLIs print its message and exit with code 2."""


class EvaluationError(Exception):
    """Bad input to an evaluation tool: the message names the file or argument and what to do."""
