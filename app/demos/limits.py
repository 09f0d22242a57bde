"""What only the web layer limits (`Settings`), per request type, with the numbers in the message so a person
knows what to change. Each demo names its check in the registry (`app.demos.registry`)."""

from __future__ import annotations

import unicodedata

from app.errors import RequestError
from app.settings import Settings
from models.image.request import LAB_FIELDS, ImageRaceRequest, ImageRequest, ImageSamplersRequest, lab_problem
from models.text.decoding import TextRequest, gap_limit_problem
from models.text.live_request import OWN, SplitError, TrainRequest, split_text, train_problem
from models.text.rework import edit_problem

SAMPLERS_STEPS = ("ddpm_steps", "ddim_steps", "dpm_steps")  # each samplers lane's steps, held to max_image_steps


def bad_characters(text: str) -> str | None:
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if char in "\n\t":
            continue
        if category == "Cc":
            return f"a control character U+{ord(char):04X} at position {index}"
        if category == "Cs":
            return f"an unpaired surrogate U+{ord(char):04X} at position {index}"
    return None


def check_text(request: TextRequest, settings: Settings) -> None:
    if len(request.prompt) > settings.max_prompt_chars:
        raise RequestError(
            f"prompt is too long: {len(request.prompt)} characters, the limit is {settings.max_prompt_chars}",
            field="prompt",
        )
    bad = bad_characters(request.prompt)
    if bad:
        raise RequestError(f"prompt contains {bad}; only printable text, newlines and tabs are allowed", field="prompt")
    if request.length > settings.max_length:
        raise RequestError(f"length {request.length} is over the limit of {settings.max_length} tokens", field="length")
    gap_problem = gap_limit_problem(request.prompt, settings.max_length)  # each ___{n} is held to the same limit
    if gap_problem:
        raise RequestError(gap_problem, field="prompt")
    if request.steps > settings.max_text_steps:
        raise RequestError(f"steps {request.steps} is over the limit of {settings.max_text_steps}", field="steps")
    # A block as long as the canvas or longer is one block (so the default suits any length).
    if request.block_length > settings.max_length:
        raise RequestError(
            f"block_length {request.block_length} is over the limit of {settings.max_length} tokens", field="block_length"
        )
    check_edit(request, settings)


def check_edit(request: TextRequest, settings: Settings) -> None:
    """A rework's fields (`models.text.rework`): what the page and the socket both refuse before a job starts; a
    word number past the end of the text is the sampler's to find (only the base run knows how many words it has)."""
    problem = edit_problem(request)
    if problem:
        raise RequestError(problem[1], field=problem[0])
    if len(request.edit_word) > settings.max_edit_word_chars:
        raise RequestError(
            f"edit_word is too long: {len(request.edit_word)} characters, the limit is {settings.max_edit_word_chars}",
            field="edit_word",
        )
    bad = bad_characters(request.edit_word)
    if bad:
        raise RequestError(f"edit_word contains {bad}", field="edit_word")
    if request.window > settings.max_edit_window:
        raise RequestError(f"window {request.window} is over the limit of {settings.max_edit_window} words", field="window")


def _check_image_steps(steps: int, settings: Settings) -> None:
    if steps > settings.max_image_steps:
        raise RequestError(f"steps {steps} is over the limit of {settings.max_image_steps}", field="steps")


def check_image(request: ImageRequest, settings: Settings) -> None:
    _check_image_steps(request.steps, settings)
    lab = lab_problem(request)  # source, start_t, mask
    if lab:
        raise RequestError(lab[1], field=lab[0])


def check_grid(request: ImageRequest, settings: Settings) -> None:
    check_image(request, settings)
    for name in LAB_FIELDS:  # 16 samples from noise: a held-out digit to start from is the image page's
        if getattr(request, name) is not None:
            raise RequestError(f"{name} is not for the grid, which starts 16 samples from noise: use /image", field=name)


def check_image_race(request: ImageRaceRequest, settings: Settings) -> None:
    _check_image_steps(request.steps, settings)  # the DDPM lane's


def check_samplers(request: ImageSamplersRequest, settings: Settings) -> None:
    for name in SAMPLERS_STEPS:
        steps = getattr(request, name)
        if steps > settings.max_image_steps:
            raise RequestError(f"{name} {steps} is over the limit of {settings.max_image_steps}", field=name)


def check_train(request: TrainRequest, settings: Settings) -> None:
    """The live twins: the budget, and a pasted text's size, characters and whether it splits (held-out text first)."""
    if request.seconds > settings.max_train_seconds:
        raise RequestError(
            f"seconds {request.seconds} is over the limit of {settings.max_train_seconds}: a run holds a core that long",
            field="seconds",
        )
    problem = train_problem(request)
    if problem:
        raise RequestError(problem[1], field=problem[0])
    if request.preset != OWN:
        return
    size = len(request.text.encode("utf-8", "surrogatepass"))
    if size > settings.max_train_text_bytes:
        raise RequestError(
            f"text is too long: {size:,} bytes of UTF-8, the limit is {settings.max_train_text_bytes:,}; for more, pick a preset",
            field="text",
        )
    bad = bad_characters(request.text)
    if bad:
        raise RequestError(f"text contains {bad}: paste plain text (binary data cannot be trained on here)", field="text")
    try:
        split_text(request.text)
    except SplitError as error:
        raise RequestError(f"text is too short to split: {error}", field="text") from None
