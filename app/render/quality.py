"""The judge's figures (`models.text.judge`) in words a lecturer can read aloud: per run, per race lane, and in
every sentence that says one lane is faster (speed means nothing without what was written)."""

from __future__ import annotations

from models.frames import TextQuality
from models.text import frontier

# Judge perplexity ratios (diffusion / twin) and how the verdict words them: thresholds, not adjectives picked per run.
ABOUT_AS_WELL = 1.1
A_LITTLE_WORSE = 1.5


def figures(quality: TextQuality | None) -> str:
    """'judge perplexity 22.2 per word, 96% real words' (empty when the run was not judged)."""
    if quality is None:
        return ""
    parts = []
    if quality.judge_ppl is not None:
        parts.append(f"judge perplexity {quality.judge_ppl:.1f} per word")
    if quality.real_words is not None:
        parts.append(f"{quality.real_words:.0%} real words")
    return ", ".join(parts) or "no words to judge"


def twin_reference() -> TextQuality | None:
    """The twin's own figures in the committed frontier (read at request time), or None without the file."""
    if not frontier.FRONTIER_CSV.exists():
        return None
    twin = frontier.twin_row(frontier.read_frontier(frontier.FRONTIER_CSV))
    return TextQuality(judge_ppl=twin.judge_ppl, real_words=twin.real_words, words=0)


def explanation(twin: TextQuality | None = None) -> str:
    """One line to read aloud: what the two figures mean, with the twin's own as the yardstick."""
    twin = twin or twin_reference()
    yardstick = (
        f" (the autoregressive twin's text scores about {twin.judge_ppl:.0f} over {frontier.LENGTH}-token samples)"
        if twin is not None and twin.judge_ppl is not None
        else ""
    )
    return (
        "Judge perplexity: how surprised an independent, larger model trained on the same stories is by each "
        f"word; lower reads better{yardstick}. Real words: the share of words that occur in the training stories. "
        "Cost: one judge pass over the finished text."
    )


def text_summary(quality: TextQuality | None, baseline: TextQuality | None) -> str:
    """The finished run's quality sentence, and with remasking the same seed without it (before -> after)."""
    if quality is None:
        return ""
    line = f"Quality: {figures(quality)}."
    if baseline is not None and baseline.judge_ppl is not None and quality.judge_ppl is not None:
        change = "better" if quality.judge_ppl < baseline.judge_ppl else "worse"
        line += (
            f" Remasking: judge perplexity {baseline.judge_ppl:.1f} without it (same seed, one token a pass) → "
            f"{quality.judge_ppl:.1f} with it ({change} by the judge)."
        )
    return line


def comparison(diffusion: TextQuality | None, ar: TextQuality | None) -> str:
    """How the diffusion lane's text read against the twin's, with both figures: the clause every speed verdict
    carries. Empty when either lane was not judged."""
    if diffusion is None or ar is None or diffusion.judge_ppl is None or ar.judge_ppl is None:
        return ""
    ratio = diffusion.judge_ppl / ar.judge_ppl
    if ratio < 1 / ABOUT_AS_WELL:
        how = "its text read better by the judge"
    elif ratio <= ABOUT_AS_WELL:
        how = "its text read about as well by the judge"
    elif ratio <= A_LITTLE_WORSE:
        how = f"its text read a little worse by the judge ({ratio:.1f}x the twin's perplexity)"
    else:
        how = f"its text read {ratio:.1f}x worse by the judge"
    return f"{how}: {figures(diffusion)}, against the twin's {figures(ar)}"
