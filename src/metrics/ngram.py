"""n-gram Jensen–Shannon divergences between two sets of sequences: the paper's language-model metric.

As ``NgramLanguageModel.js_with`` in ``language_helpers.py`` of the released code (Gulrajani et al. 2017):
each set of sequences gives the empirical distribution of its n-grams (every window of ``n`` consecutive
symbols of every sequence, the padding included), and the divergence between the two distributions is

    JS(P, Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M),   M = ½ (P + Q),

divided by ``log 2``: in bits, 0 for identical distributions and 1 for disjoint supports (``log 2`` nats). Pure
functions on sequences of hashable symbols (strings, or tuples of indices); no Lightning, no torch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence

Sequences = Iterable[Sequence[Hashable]]


def ngram_counts(sequences: Sequences, n: int) -> Counter[tuple[Hashable, ...]]:
    """How often each n-gram occurs: every window of ``n`` consecutive symbols of every sequence.

    Args:
        sequences: Strings, or sequences of symbols (e.g. tuples of vocabulary indices).
        n: Length of the n-grams (>= 1). Sequences shorter than ``n`` contribute nothing.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    counts: Counter[tuple[Hashable, ...]] = Counter()
    for seq in sequences:
        seq = tuple(seq)
        counts.update(seq[i : i + n] for i in range(len(seq) - n + 1))
    return counts


def js_divergence(p: Mapping[Hashable, float], q: Mapping[Hashable, float], base: float = 2.0) -> float:
    """Jensen–Shannon divergence between two distributions given as (unnormalised) counts.

    Args:
        p: Counts (or weights) of each outcome under the first distribution.
        q: Counts of each outcome under the second.
        base: Base of the logarithm: 2 (bits, as ``js_with``: at most 1) or ``math.e`` (nats: at most log 2).

    Returns:
        ``½ KL(P ‖ M) + ½ KL(Q ‖ M)`` with ``M = ½ (P + Q)``, in units of ``log(base)``.

    Raises:
        ValueError: When either distribution is empty (no n-grams: all sequences shorter than ``n``).
    """
    p_total, q_total = float(sum(p.values())), float(sum(q.values()))
    if p_total <= 0 or q_total <= 0:
        raise ValueError("the Jensen-Shannon divergence needs two non-empty distributions")
    kl_p_m = kl_q_m = 0.0
    for key in set(p) | set(q):
        p_i, q_i = p.get(key, 0.0) / p_total, q.get(key, 0.0) / q_total
        m_i = 0.5 * (p_i + q_i)
        if p_i > 0:
            kl_p_m += p_i * math.log(p_i / m_i)
        if q_i > 0:
            kl_q_m += q_i * math.log(q_i / m_i)
    return max(0.0, 0.5 * (kl_p_m + kl_q_m)) / math.log(base)  # max: rounding can leave -1e-17


def ngram_js(samples: Sequences, reference: Sequences, n: int, base: float = 2.0) -> float:
    """JS divergence between the n-gram distributions of two sets of sequences (``js_with``, in bits)."""
    return js_divergence(ngram_counts(samples, n), ngram_counts(reference, n), base)


def ngram_js_all(
    samples: Sequences, reference: Sequences, max_n: int = 4, base: float = 2.0
) -> dict[str, float]:
    """``js1`` to ``js{max_n}`` between generated and reference sequences, as the paper logs them.

    Args:
        samples: Generated sequences.
        reference: Held-out sequences.
        max_n: Largest n-gram length (4 in the paper).
        base: Base of the logarithm (2: bits, as the released code).

    Returns:
        ``{"js1": ..., "js2": ..., ...}``.
    """
    samples, reference = [tuple(s) for s in samples], [tuple(r) for r in reference]
    return {f"js{n}": ngram_js(samples, reference, n, base) for n in range(1, max_n + 1)}
