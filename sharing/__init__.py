"""Publishing to the Hugging Face Hub: folder upload with retries, the shared Hub flags, and quoting errors in one
line (a leaf package: Hub client and stdlib only)."""

from .arguments import HubArguments
from .push import DEFAULT_IGNORE_PATTERNS, push_folder
from .retry import PushError, first_line, retry_transient

__all__ = ["DEFAULT_IGNORE_PATTERNS", "HubArguments", "PushError", "first_line", "push_folder", "retry_transient"]
