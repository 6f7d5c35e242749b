"""Inference for trained DDPMs of handwritten characters: the pipeline class, saving with a model card, and generation."""

from pipelines.glyph_pipeline import GlyphDDPMPipeline, GlyphPipelineOutput, image_grid, save_trajectory_gif
from pipelines.save import save_pipeline

__all__ = ["GlyphDDPMPipeline", "GlyphPipelineOutput", "image_grid", "save_pipeline", "save_trajectory_gif"]
