"""Evaluate the digit DDPM against the held-out MNIST test set and print one JSON object.

    python -m models.image.evaluate --json [--quick]

classifier_t10k_accuracy: the scoring classifier on t10k; class_match: share of generated digits the
classifier assigns to the requested class (per class, default sampler/steps/guidance; and at guidance 0);
fd_generated: Frechet distance between classifier features of generated digits and of t10k;
fd_train_floor: the same for train10k vs t10k, the floor to compare against; ms_per_step at batch 1 and 16.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import CHECKPOINT_ROOT
from models.image.classifier import DigitClassifier
from models.image.data import EVALUATION_MNIST, load_split, to_model_range
from models.image.model import ImageModel, load_image_model
from models.image.sample import ImageRequest, sample_image

DEFAULTS = ImageRequest()


@torch.inference_mode()
def features(classifier: DigitClassifier, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(to_model_range(images))
    return torch.cat([classifier.features(chunk) for chunk in x.split(1000)]).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) = tr sqrt(sqrt(A) B sqrt(A)), whose argument is symmetric PSD: eigh is enough.
    root_a = _psd_sqrt(cov_a)
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def generate(
    model: ImageModel, per_class: int, guidance: float, steps: int, sampler: str, batch: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for digit in range(10):
        for start in range(0, per_class, batch):
            n = min(batch, per_class - start)
            request = ImageRequest(
                digit=digit, guidance=guidance, steps=steps, sampler=sampler, seed=1000 * digit + start, batch=n
            )
            *_, last = sample_image(model, request)
            images.append(last.x0)
            labels += [digit] * n
    return np.concatenate(images), np.array(labels)


def ms_per_step(model: ImageModel, batch: int, steps: int = 20) -> float:
    request = ImageRequest(digit=3, guidance=DEFAULTS.guidance, sampler="ddim", steps=steps, batch=batch)
    list(sample_image(model, ImageRequest(steps=2, batch=batch)))  # warm up
    started = time.perf_counter()
    list(sample_image(model, request))
    return (time.perf_counter() - started) * 1000 / steps


def evaluate(model: ImageModel, data: Path, quick: bool) -> dict:
    classifier = model.classifier
    assert classifier is not None
    test_images, test_labels = load_split(data, "t10k")
    train_images, _ = load_split(data, "train10k")
    with torch.inference_mode():
        predicted = torch.cat([classifier(c).argmax(-1) for c in torch.from_numpy(to_model_range(test_images)).split(1000)])
    results: dict = {"classifier_t10k_accuracy": float((predicted.numpy() == test_labels).mean())}
    per_class = 10 if quick else 100
    steps = 20 if quick else DEFAULTS.steps
    generated, labels = generate(model, per_class, DEFAULTS.guidance, steps, DEFAULTS.sampler)
    with torch.inference_mode():
        assigned = classifier(torch.from_numpy(to_model_range(generated))).argmax(-1).numpy()
    results["class_match"] = float((assigned == labels).mean())
    results["class_match_per_digit"] = [float((assigned[labels == d] == d).mean()) for d in range(10)]
    unguided, unguided_labels = generate(model, per_class // 2 if quick else per_class, 0.0, steps, DEFAULTS.sampler)
    with torch.inference_mode():
        assigned0 = classifier(torch.from_numpy(to_model_range(unguided))).argmax(-1).numpy()
    results["class_match_guidance0"] = float((assigned0 == unguided_labels).mean())
    test_features = features(classifier, test_images)
    results["fd_generated"] = frechet_distance(features(classifier, generated), test_features)
    floor_sample = np.random.default_rng(0).choice(len(train_images), len(generated), replace=False)
    results["fd_train_floor"] = frechet_distance(features(classifier, train_images[floor_sample]), test_features)
    results["fd_ratio"] = results["fd_generated"] / results["fd_train_floor"]
    results["ms_per_step_batch1"] = ms_per_step(model, 1)
    results["ms_per_step_batch16"] = ms_per_step(model, 16)
    results.update(
        generated_per_class=per_class,
        sampler=DEFAULTS.sampler,
        steps=steps,
        guidance=DEFAULTS.guidance,
        threads=torch.get_num_threads(),
    )
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=CHECKPOINT_ROOT / "image-ddpm")
    p.add_argument("--classifier", type=Path, default=CHECKPOINT_ROOT / "digit-classifier")
    p.add_argument("--data", type=Path, default=EVALUATION_MNIST, help="folder with t10k-* and train10k-* IDX files")
    p.add_argument("--quick", action="store_true", help="a small sample: under a minute")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    args = p.parse_args(argv)
    model = load_image_model(args.model, args.classifier)
    print(json.dumps(evaluate(model, args.data, args.quick)))


if __name__ == "__main__":
    main()
