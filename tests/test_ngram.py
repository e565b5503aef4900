"""The n-gram Jensen–Shannon divergences against direct computations (``js_with`` of the released code)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from src.metrics.ngram import js_divergence, ngram_counts, ngram_js, ngram_js_all


def test_ngrams_are_every_window_of_every_sequence() -> None:
    assert ngram_counts(["abcb", "bc", "x"], 2) == Counter({("b", "c"): 2, ("a", "b"): 1, ("c", "b"): 1})
    assert ngram_counts([(1, 2, 3)], 3) == Counter({(1, 2, 3): 1})
    assert ngram_counts(["ab"], 3) == Counter()  # shorter than n: nothing
    with pytest.raises(ValueError, match="n must be >= 1"):
        ngram_counts(["ab"], 0)


def test_identical_text_gives_zero_and_disjoint_alphabets_give_log_2() -> None:
    text = ["the cat sat", "on the mat"]
    assert ngram_js_all(text, list(reversed(text))) == {f"js{n}": 0.0 for n in range(1, 5)}
    for n in range(1, 5):
        assert ngram_js(["abcabc", "cab"], ["xyzxyz", "zzy"], n) == pytest.approx(1.0)  # bits: log 2 / log 2
        assert ngram_js(["abcabc", "cab"], ["xyzxyz", "zzy"], n, base=math.e) == pytest.approx(math.log(2))


def test_a_hand_computed_case() -> None:
    # P = {a: 1/2, b: 1/2}, Q = {a: 1/2, c: 1/2}, M = {a: 1/2, b: 1/4, c: 1/4}:
    # KL(P || M) = KL(Q || M) = 1/2 log 2, so JS = 1/2 log 2 nats = 1/2 bit.
    assert ngram_js(["ab"], ["ac"], 1) == pytest.approx(0.5)
    assert ngram_js(["ab"], ["ac"], 1, base=math.e) == pytest.approx(0.5 * math.log(2))


def _direct(samples: list[str], reference: list[str], n: int) -> float:
    """JS in bits from the definition, with numpy over the union of n-grams (scipy gives its square root)."""
    grams = lambda texts: [t[i : i + n] for t in texts for i in range(len(t) - n + 1)]  # noqa: E731
    p_grams, q_grams = grams(samples), grams(reference)
    support = sorted(set(p_grams) | set(q_grams))
    p = np.array([p_grams.count(g) for g in support], dtype=float) / len(p_grams)
    q = np.array([q_grams.count(g) for g in support], dtype=float) / len(q_grams)
    m = (p + q) / 2
    kl = lambda a: np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / m), 0.0))  # noqa: E731
    direct = 0.5 * (kl(p) + kl(q)) / np.log(2)
    assert direct == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)
    return float(direct)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_texts_match_the_direct_computation(seed: int) -> None:
    rng = random.Random(seed)
    samples = ["".join(rng.choices("abcd ", k=rng.randint(3, 12))) for _ in range(40)]
    reference = ["".join(rng.choices("abcde", k=rng.randint(3, 12))) for _ in range(60)]
    values = ngram_js_all(samples, reference)
    for n in range(1, 5):
        assert values[f"js{n}"] == pytest.approx(_direct(samples, reference, n), abs=1e-12)
    assert 0 < values["js1"] < values["js4"] <= 1  # longer n-grams separate the texts more


def test_sequences_of_indices_work_like_strings_and_the_divergence_is_symmetric() -> None:
    a, b = [(1, 2, 3, 0), (2, 2, 0, 0)], [(1, 2, 0, 0), (3, 3, 3, 0)]
    assert ngram_js(a, b, 2) == pytest.approx(ngram_js(b, a, 2))
    as_text = ["".join("xyzw"[i] for i in s) for s in a], ["".join("xyzw"[i] for i in s) for s in b]
    assert ngram_js(a, b, 2) == pytest.approx(ngram_js(*as_text, 2))


def test_empty_distributions_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        js_divergence(Counter(), Counter({"a": 1}))
