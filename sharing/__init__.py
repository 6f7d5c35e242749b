"""Publishing to the Hugging Face Hub: folder upload with retries, and quoting errors in one line (a leaf package:
Hub client and stdlib only)."""

from .push import DEFAULT_IGNORE_PATTERNS, push_folder
from .retry import PushError, first_line, retry_transient

__all__ = ["DEFAULT_IGNORE_PATTERNS", "PushError", "first_line", "push_folder", "retry_transient"]
