"""Turn an image training run into a committed checkpoint folder with a model card.

    python -m models.image.publish --run runs/image-ddpm [--name image-ddpm]

Copies the EMA UNet (fp16 when the predicted noise barely changes) and scheduler config, runs the
evaluation, writes MODEL_CARD.md with the metrics and a sample grid, and the sha256 manifest.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DModel
from PIL import Image

from models.checkpoints import CHECKPOINT_ROOT, portable_summary, read_json, save_weights, write_json, write_manifest
from models.image.evaluate import EVALUATION_MNIST, evaluate
from models.image.model import ImageModel, load_classifier, load_unet
from models.image.sample import ImageRequest, sample_image


def fp16_is_free(unet: UNet2DModel) -> bool:
    """Relative change of the predicted noise after an fp16 round trip of the weights."""
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t, y = torch.linspace(10, 990, 8).long(), torch.arange(8)
    with torch.inference_mode():
        full = unet(x, t, class_labels=y).sample
        half_unet = type(unet).from_config(unet.config)
        half_unet.load_state_dict({k: v.half().float() for k, v in unet.state_dict().items()})
        half = half_unet(x, t, class_labels=y).sample
    return float((full - half).norm() / full.norm()) < 1e-3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--name", default="image-ddpm")
    p.add_argument("--classifier", type=Path, default=CHECKPOINT_ROOT / "digit-classifier")
    p.add_argument("--data", type=Path, default=EVALUATION_MNIST)
    p.add_argument("--quick", action="store_true", help="quick metrics (for trying the command)")
    p.add_argument("--out-root", type=Path, default=CHECKPOINT_ROOT)
    args = p.parse_args(argv)

    unet = load_unet(args.run / "unet")
    half = fp16_is_free(unet)
    out = args.out_root / args.name
    if out.exists():
        shutil.rmtree(out)
    (out / "unet").mkdir(parents=True)
    (out / "scheduler").mkdir()
    shutil.copy(args.run / "unet" / "config.json", out / "unet" / "config.json")
    save_weights(unet, out / "unet" / "model.safetensors", half=half)
    shutil.copy(args.run / "scheduler" / "scheduler_config.json", out / "scheduler" / "scheduler_config.json")
    shutil.copy(args.run / "training.csv", out / "training.csv")
    summary = portable_summary(read_json(args.run / "training_summary.json"))
    summary["weights_dtype"] = "float16" if half else "float32"

    model = ImageModel(
        unet, read_json(out / "scheduler" / "scheduler_config.json"), load_classifier(args.classifier), args.name, trained=True
    )
    metrics = evaluate(model, args.data, args.quick)
    summary["metrics"] = metrics
    write_json(out / "training_summary.json", summary)
    rows = []
    for digit in range(10):
        *_, last = sample_image(model, ImageRequest(digit=digit, steps=50, seed=digit, batch=10))
        rows.append(np.concatenate(list(last.x0), axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).resize((560, 560), Image.Resampling.NEAREST).save(out / "samples.png")
    card = [
        f"# {args.name}",
        "",
        f"A class-conditional diffusers `UNet2DModel` ({summary['parameters']:,} parameters) for 28x28 digits:",
        "epsilon prediction, 1000-step cosine schedule, class 10 = no class (10% label dropout) for",
        "classifier-free guidance, EMA weights.",
        "",
        "## Training",
        "",
        f"- data: MNIST train10k ({summary['train_digits']} digits), sha256 `{summary['data_sha256']}`",
        f"- steps {summary['steps']}, epochs {summary['epochs']:.1f}, wall time {summary['wall_seconds'] / 60:.0f} min "
        f"on {summary['hardware']}",
        f"- weights stored as {summary['weights_dtype']}",
        "",
        "## Metrics (held-out MNIST t10k; `python -m models.image.evaluate --json`)",
        "",
        "```json",
        json.dumps(metrics, indent=1),
        "```",
        "",
        f"Defaults: {metrics['sampler']}, {metrics['steps']} steps, guidance {metrics['guidance']}.",
        "",
        "## Samples",
        "",
        "![one row per digit, DDIM 50 steps, guidance 1](samples.png)",
        "",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(card))
    write_manifest(out)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
