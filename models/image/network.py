"""The image denoiser: a small class-conditional diffusers UNet2DModel for 28x28 digits.

Class index 10 means "no class": trained with 10% label dropout, it gives the unconditional
prediction that classifier-free guidance extrapolates away from.
"""

from __future__ import annotations

from diffusers import DDPMScheduler, UNet2DModel

NO_CLASS = 10
IMAGE_SIZE = 28


def build_unet(width: int = 32) -> UNet2DModel:
    # Three levels, 28 -> 14 -> 7; attention only at 7x7 where it is cheap.
    return UNet2DModel(
        sample_size=IMAGE_SIZE,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(width, 2 * width, 2 * width),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        num_class_embeds=NO_CLASS + 1,
        norm_num_groups=8,
        attention_head_dim=16,
    )


def build_scheduler() -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",  # cosine schedule
        prediction_type="epsilon",
        clip_sample=True,
        timestep_spacing="trailing",  # sampling starts at t=999 whatever the step count
    )
