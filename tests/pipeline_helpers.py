"""A tiny seeded UNet and class names shared by the pipeline, app, generation, Hub and evaluation tests."""

import torch
from diffusers import UNet2DModel

CLASS_NAMES = ["۰", "۷", "ب"]


def tiny_unet(num_class_embeds: int | None = None) -> UNet2DModel:
    """A seeded 2-level UNet with 8/16 channels on 8 x 8 px, one channel: milliseconds a step.

    Args:
        num_class_embeds (`int`, *optional*):
            For a class-conditional model: the number of classes plus one (the null class of guidance).
    """
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        num_class_embeds=num_class_embeds,
    )
