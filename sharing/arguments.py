"""The Hub flags every command that publishes shares: `--push_to_hub` (a switch), `--hub_model_id`,
`--hub_private_repo`.

The names are those of transformers' `TrainingArguments` and diffusers' training examples, and of
`train_ddpm.py`; each tool's `HfArgumentParser` composes this dataclass with its own (or its options inherit it).
"""

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class HubArguments:
    """Whether and where a command uploads what it made."""

    push_to_hub: bool = field(default=False, metadata={"help": (
        "Also upload what the command made to the Hub repo --hub_model_id (models and data sets alike).")})
    hub_model_id: Optional[str] = field(default=None, metadata={"help": (
        "The Hub repo id (owner/name) --push_to_hub uploads to: a model repo, or a dataset repo for data sets.")})
    hub_private_repo: bool = field(default=False, metadata={"help": "With --push_to_hub: create the repo private."})

    def hub_problem(self) -> str | None:
        """The first contradiction among the Hub flags, as a sentence naming them, or None."""
        if self.push_to_hub and not self.hub_model_id:
            return "--push_to_hub needs --hub_model_id OWNER/NAME"
        if self.hub_model_id and not self.push_to_hub:
            return "--hub_model_id only applies with --push_to_hub"
        if self.hub_private_repo and not self.push_to_hub:
            return "--hub_private_repo only applies with --push_to_hub"
        return None
