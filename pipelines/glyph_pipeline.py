"""Deprecated name of `pipelines.character_pipeline` (the pipeline class was `GlyphDDPMPipeline`).

"Glyph" now names only the font-rendered data set (`python -m data_prep glyphs`). Models saved before the
rename carry their own copy of this module (`glyph_pipeline.py`, named in their `model_index.json`) and load as
before, with `trust_remote_code=True` or with `CharacterDDPMPipeline.from_pretrained`; code that imports the old
names gets the new class with a `FutureWarning`.
"""

import warnings

from pipelines import character_pipeline
from pipelines.character_pipeline import *  # noqa: F403  (image_grid, save_trajectory_gif, ... under their names)

_RENAMED = {"GlyphDDPMPipeline": "CharacterDDPMPipeline", "GlyphPipelineOutput": "CharacterPipelineOutput"}


def __getattr__(name: str):
    if name in _RENAMED:
        warnings.warn(f"pipelines.glyph_pipeline.{name} is deprecated; use pipelines.{_RENAMED[name]}",
                      FutureWarning, stacklevel=2)
        return getattr(character_pipeline, _RENAMED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
