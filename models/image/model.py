"""An image model ready to sample: the EMA UNet, its scheduler config, and the digit classifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DModel

from models.checkpoints import load_weights, read_json, verify_manifest
from models.image.classifier import ClassifierConfig, DigitClassifier
from models.image.network import build_scheduler, build_unet


@dataclass
class ImageModel:
    unet: UNet2DModel
    scheduler_config: dict
    classifier: DigitClassifier | None
    name: str
    trained: bool
    card: dict = field(default_factory=dict)
    # The "decided" meter's own classifier, read at every step of a run: a narrower one than the scoring
    # classifier (`classifier`, which evaluation uses), so the meter costs under 5% of a step. None: the
    # scoring classifier reads for the meter too.
    meter: DigitClassifier | None = None

    def __post_init__(self) -> None:
        self.unet.eval()
        for classifier in (self.classifier, self.meter):
            if classifier is not None:
                classifier.eval()

    @property
    def meter_classifier(self) -> DigitClassifier | None:
        """What reads the digit at every step of a run."""
        return self.meter if self.meter is not None else self.classifier


def load_unet(folder: Path) -> UNet2DModel:
    # Strict: the config beside the weights builds the network, never defaults.
    config = read_json(folder / "config.json")
    missing = set(UNet2DModel.extract_init_dict(config)[0]) ^ set(k for k in config if not k.startswith("_"))
    if missing:
        raise ValueError(f"{folder}/config.json does not match UNet2DModel's arguments: {sorted(missing)}")
    unet = UNet2DModel.from_config(config)
    load_weights(unet, folder / "model.safetensors")
    return unet


def load_classifier(folder: Path) -> DigitClassifier:
    verify_manifest(folder)
    classifier = DigitClassifier(ClassifierConfig(**read_json(folder / "config.json")))
    load_weights(classifier, folder / "model.safetensors")
    return classifier.eval()


def load_image_model(folder: Path, classifier_folder: Path | None = None, meter_folder: Path | None = None) -> ImageModel:
    verify_manifest(folder)
    unet = load_unet(folder / "unet")
    scheduler_config = read_json(folder / "scheduler" / "scheduler_config.json")
    classifier = load_classifier(classifier_folder) if classifier_folder else None
    meter = load_classifier(meter_folder) if meter_folder else None
    card = read_json(folder / "training_summary.json") if (folder / "training_summary.json").exists() else {}
    return ImageModel(unet, scheduler_config, classifier, folder.name, trained=True, card=card, meter=meter)


def untrained_image_model(classifier: DigitClassifier | None = None, seed: int = 0) -> ImageModel:
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(seed)
        unet = build_unet(16)
    return ImageModel(unet, dict(build_scheduler().config), classifier, "image-ddpm", trained=False)


def noise_schedule(model: ImageModel) -> np.ndarray:
    """sqrt(1 - alpha_bar_t) for t = 0..999: how much of x_t is noise."""
    from diffusers import DDPMScheduler

    alphas_cumprod = DDPMScheduler.from_config(model.scheduler_config).alphas_cumprod
    return (1 - alphas_cumprod).sqrt().numpy()
