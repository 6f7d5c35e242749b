"""Inference for trained DDPMs of handwritten characters: the pipeline class, saving with a model card, sampling
and generation."""

from pipelines.character_pipeline import CharacterDDPMPipeline, CharacterPipelineOutput, image_grid, save_trajectory_gif
from pipelines.save import save_pipeline

__all__ = ["CharacterDDPMPipeline", "CharacterPipelineOutput", "image_grid", "save_pipeline", "save_trajectory_gif"]


def __getattr__(name: str):
    """The names of before the rename (`GlyphDDPMPipeline`, `GlyphPipelineOutput`), with a `FutureWarning`."""
    if name in ("GlyphDDPMPipeline", "GlyphPipelineOutput"):
        from pipelines import glyph_pipeline

        return getattr(glyph_pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
