"""The committed checkpoints are really trained: held-out thresholds on small slices (never train data).

Two kinds of bound: absolute ones a little above the values measured for this test (see each MODEL_CARD.md),
which catch a broken or swapped checkpoint, and ratios to the twin the README states (NELBO against the twin's
NLL; the default decoding's variety and gen-ppl against the twin's samples; a Frechet distance near the
real-digit floor), checked on a slice small enough for `make test`.
"""

import numpy as np
import pytest
import torch

from models.checkpoints import CHECKPOINT_ROOT
from models.image.data import load_split, to_model_range
from models.image.evaluate import EVALUATION_MNIST, features, frechet_distance
from models.image.model import load_classifier, load_image_model
from models.image.sample import SAMPLERS, ImageRequest, sample_image
from models.text.data import encode_stream, fixed_windows, read_stories
from models.text.evaluate import HELDOUT_TEXT, PROMPTS, heldout_nelbo, heldout_nll, sample_quality
from models.text.model import load_text_model
from models.text.sample import DEFAULT_DECODING, TextRequest, sample_diffusion

# The last 32 windows (8,192 tokens) of the held-out head, with 4 mask draws: the NELBO estimate then moves by
# about 0.03 nats with the draws' seed (seeds 0-2: 2.806, 2.838, 2.823). On the last 8 windows it moved by
# 0.33 for an earlier checkpoint (seeds 0-3: 2.83 to 3.16), too much for a bound.
HELDOUT_WINDOWS = 32
NELBO_DRAWS = 4
AR_NLL_MAX = 2.8  # nats/token on the held-out slice (measured 2.569)
# An upper bound on NLL (measured 2.806 at seed 0); the checkpoint published before (its third stage) measured
# 2.889 here, so a swap back to it fails.
DIFFUSION_NELBO_MAX = 2.87
# NELBO against the twin's NLL on the same text: measured here 1.092 (seed 0; 1.092-1.105 over seeds 0-2), on
# all 124 held-out windows 1.104 (the target, 1.10x, is missed there by 0.01 nats: see docs/text-recipes.md).
# The checkpoint before measured 1.125 here.
NELBO_TO_NLL_TARGET = 1.11
# The default decoding's samples against the twin's, 16 each (a slice of the cards' 128): measured distinct-2
# 0.774 against 0.828 (0.93 of the twin's) and gen-ppl 23.5 against 14.0 (1.68x). Most-confident-first reaches
# about 0.4 of the twin's distinct-2; the bound on gen-ppl is the target's 2x.
DISTINCT2_SHARE_MIN = 0.9
GEN_PPL_RATIO_MAX = 2.0
pytestmark = pytest.mark.real_model  # every test here measures a committed checkpoint


@pytest.fixture(scope="module")
def text_models():
    return {name: load_text_model(CHECKPOINT_ROOT / f"text-{name}") for name in ("diffusion", "ar")}


@pytest.fixture(scope="module")
def heldout_windows(text_models):
    ar = text_models["ar"]
    return fixed_windows(encode_stream(ar.tokenizer, read_stories(HELDOUT_TEXT)), ar.context)[-HELDOUT_WINDOWS:]


@pytest.fixture(scope="module")
def ar_nll(text_models, heldout_windows):
    return heldout_nll(text_models["ar"].network, heldout_windows)


@pytest.fixture(scope="module")
def diffusion_nelbo(text_models, heldout_windows):
    return heldout_nelbo(text_models["diffusion"].network, heldout_windows, draws=NELBO_DRAWS)


def test_text_twins_share_tokenizer_and_shape(text_models):
    diffusion, ar = text_models["diffusion"], text_models["ar"]
    assert diffusion.tokenizer.to_str() == ar.tokenizer.to_str()
    a, b = diffusion.network.config, ar.network.config
    assert (a.width, a.depth, a.heads, a.context, a.vocab_size) == (b.width, b.depth, b.heads, b.context, b.vocab_size)
    assert not a.causal and b.causal


def test_ar_twin_heldout_nll(ar_nll):
    assert ar_nll < AR_NLL_MAX


@pytest.mark.slow
def test_diffusion_heldout_nelbo(diffusion_nelbo):
    assert diffusion_nelbo < DIFFUSION_NELBO_MAX


@pytest.mark.slow
def test_diffusion_nelbo_is_within_the_target_of_the_twins_nll(diffusion_nelbo, ar_nll):
    assert diffusion_nelbo / ar_nll <= NELBO_TO_NLL_TARGET, (diffusion_nelbo, ar_nll)


def test_diffusion_writes_known_words(text_models):
    model = text_models["diffusion"]
    *_, last = sample_diffusion(model, TextRequest(prompt="Once upon a time", length=48, steps=24, seed=0))
    words = last.text.lower().split()
    common = {"the", "a", "and", "was", "to", "she", "he", "they", "her", "his", "it", "with", "in", "of"}
    assert sum(w.strip('.,!?"') in common for w in words) >= 5, last.text


@pytest.fixture(scope="module")
def default_sample_quality(text_models):
    """Both models' samples in the default decoding, on a slice of the card's measurement (eight prompts, seeds
    0-1: 16 samples of 64 tokens each; the twin judges both)."""
    ar = text_models["ar"]
    return {name: sample_quality(model, ar, DEFAULT_DECODING, PROMPTS, 2, 64, 64) for name, model in text_models.items()}


@pytest.mark.slow
def test_default_decoding_is_about_as_varied_as_the_twin(default_sample_quality):
    diffusion, ar = default_sample_quality["diffusion"], default_sample_quality["ar"]
    assert diffusion["distinct2"] >= DISTINCT2_SHARE_MIN * ar["distinct2"], (diffusion, ar)


@pytest.mark.slow
def test_default_decoding_reads_within_the_gen_ppl_bound(default_sample_quality):
    diffusion, ar = default_sample_quality["diffusion"], default_sample_quality["ar"]
    assert diffusion["gen_ppl"] <= GEN_PPL_RATIO_MAX * ar["gen_ppl"], (diffusion, ar)


@pytest.mark.parametrize(("name", "minimum"), [("digit-classifier", 0.98), ("digit-meter", 0.975)])
def test_classifier_accuracy_on_a_t10k_slice(name, minimum):
    """The scoring classifier (99.0% on all of t10k) and the meter's narrow one (98.6%) on the last 2000 digits."""
    classifier = load_classifier(CHECKPOINT_ROOT / name)
    images, labels = load_split(EVALUATION_MNIST, "t10k")
    with torch.inference_mode():
        predicted = classifier(torch.from_numpy(to_model_range(images[-2000:]))).argmax(-1).numpy()
    assert (predicted == labels[-2000:]).mean() >= minimum


@pytest.fixture(scope="module")
def image_model():
    return load_image_model(CHECKPOINT_ROOT / "image-ddpm", CHECKPOINT_ROOT / "digit-classifier")


@pytest.fixture(scope="module")
def digits(image_model):
    """`digits(sampler)`: 30 digits, 3 of each class (seed = the digit, 20 steps, guidance 1) and the classifier's
    probabilities for each; drawn once per sampler, so the Frechet test reuses the class-match test's DDIM set."""
    drawn = {}

    def draw(sampler):
        if sampler not in drawn:
            images, labels, probabilities = [], [], []
            for digit in range(10):
                *_, last = sample_image(image_model, ImageRequest(digit=digit, sampler=sampler, steps=20, seed=digit, batch=3))
                images.append(last.x0)
                labels += [digit] * len(last.x0)
                probabilities += list(last.digit_probabilities)
            drawn[sampler] = np.concatenate(images), np.array(labels), np.array(probabilities)
        return drawn[sampler]

    return draw


# Of the 30 digits, how many the classifier must read as the requested class. Measured for this test (and at
# publication): DDIM 30/30, DDPM 30/30, DPM-Solver++ 30/30 since its x0 estimate is clipped to the data's range
# (26/30 before). The seeds are fixed, so the counts are the same on every run; what can move them is a borderline
# digit flipping with another CPU's or torch's rounding. Each bound leaves one such flip: DDIM's closest call is
# decided by more than 0.3 in probability, DDPM's (a 3 at 0.39 against 0.28) could flip, and so could DPM's (a 0
# at 0.54). A second miss is a model or a sampler that got worse.
MIN_CLASS_MATCHES = {"ddim": 29, "ddpm": 29, "dpm": 29}


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_ddpm_draws_the_requested_digit_with_every_sampler(digits, sampler):
    _, labels, probabilities = digits(sampler)
    matches = int((probabilities.argmax(-1) == labels).sum())
    assert matches >= MIN_CLASS_MATCHES[sampler], f"{sampler}: {matches}/{len(labels)}"


# The Frechet distance of the 30 DDIM digits to t10k, in the classifier's feature space, against the floor:
# real train10k digits picked the same way (3 a class), averaged over ten picks. At 30 digits both distances
# are dominated by the small sample's covariance error, so the ratio is not the model card's 2.5x (1000
# digits, a floor of 0.15); measured here: 2.13 against a floor of 1.80 (single picks 1.48-2.40), 1.18x.
# Bound 2.0x: the same 30 seeds gave 3.2x with DPM-Solver++ before its x0 was clipped (4 misses), 5.7x with two DDIM steps, 33x
# when every class is drawn as a 3, and an untrained model some 250x.
FD_TO_FLOOR_MAX = 2.0


@pytest.mark.slow
def test_ddim_digits_lie_near_t10k_in_the_classifiers_feature_space(digits, image_model):
    generated, _, _ = digits("ddim")
    classifier = image_model.classifier
    test_images, _ = load_split(EVALUATION_MNIST, "t10k")
    train_images, train_labels = load_split(EVALUATION_MNIST, "train10k")
    reference = features(classifier, test_images[-2000:])
    distance = frechet_distance(features(classifier, generated), reference)
    rng = np.random.default_rng(0)
    floors = []
    for _ in range(10):
        pick = np.concatenate([rng.choice(np.flatnonzero(train_labels == d), 3, replace=False) for d in range(10)])
        floors.append(frechet_distance(features(classifier, train_images[pick]), reference))
    floor = float(np.mean(floors))
    assert distance <= FD_TO_FLOOR_MAX * floor, (distance, floor)
