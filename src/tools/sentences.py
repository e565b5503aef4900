"""A small offline text corpus: templated English sentences from a short word list, with Zipf-like word frequencies.

No corpus can be downloaded here, so the language-model demo, its README samples and its learning test train on
this one. Every line has at most 32 characters (the paper's sequence length).

    python -m src.tools.sentences data/sentences.txt [--lines 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

NOUNS = ["cat", "dog", "man", "girl", "bird", "king", "boy", "fish", "horse", "queen"]
VERBS = ["saw", "likes", "found", "ate", "took", "wants", "hid"]
ADJECTIVES = ["big", "tall", "red", "small", "happy", "dark"]
PLACES = ["in the house", "on the hill", "by the sea", "at home", "in the park"]
TEMPLATES = [
    "the {n1} {v} the {n2}.",
    "a {a} {n1} {v} the {n2}.",
    "the {n1} {v} a {a} {n2}.",
    "the {n1} is {a} {p}.",
    "my {n1} {v} the {n2} {p}.",
]


def _zipf(words: list[str]) -> list[float]:
    """Weights ``1 / rank``: the first word of a list is the most frequent."""
    return [1.0 / (rank + 1) for rank in range(len(words))]


def make_sentences(n: int, seed: int = 0, max_len: int = 32) -> list[str]:
    """``n`` sentences of at most ``max_len`` characters, the same for the same seed.

    Args:
        n: Number of lines.
        seed: Seed of the random choices.
        max_len: Longest line kept; longer draws are redrawn.
    """
    rng = random.Random(seed)
    lines: list[str] = []
    while len(lines) < n:
        template = rng.choices(TEMPLATES, _zipf(TEMPLATES))[0]
        n1, n2 = rng.choices(NOUNS, _zipf(NOUNS), k=2)
        line = template.format(
            n1=n1,
            n2=n2,
            v=rng.choices(VERBS, _zipf(VERBS))[0],
            a=rng.choices(ADJECTIVES, _zipf(ADJECTIVES))[0],
            p=rng.choice(PLACES),
        )
        if len(line) <= max_len:
            lines.append(line)
    return lines


def word_counts(lines: list[str]) -> Counter[str]:
    """How often each word occurs (split on spaces, the full stop removed)."""
    return Counter(word.strip(".") for line in lines for word in line.split())


def main(argv: list[str] | None = None) -> Path:
    """Write the corpus, one sentence a line; returns its path."""
    parser = argparse.ArgumentParser(
        description="Write a small templated English corpus, one sentence a line."
    )
    parser.add_argument("out", type=Path, help="the text file to write")
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = make_sentences(args.lines, args.seed)
    args.out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    top = ", ".join(f"{w} ({c})" for w, c in word_counts(lines).most_common(5))
    print(f"wrote {len(lines)} lines to {args.out}; most frequent words: {top}")
    return args.out


if __name__ == "__main__":
    main()
