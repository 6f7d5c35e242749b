"""Publishing to the Hugging Face Hub: folder upload with retries (a leaf package: Hub client and stdlib only)."""

from .push import DEFAULT_IGNORE_PATTERNS, push_folder
from .retry import PushError, retry_transient

__all__ = ["DEFAULT_IGNORE_PATTERNS", "PushError", "push_folder", "retry_transient"]
