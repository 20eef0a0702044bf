"""How stable a claim's verdict is to the draw of seeds (issue 29): the bootstrap over seeds.

A resample draws n seeds with replacement from the n seeds a claim was judged on (the same draw for
every group and comparison, so pairs stay pairs); a seed drawn twice counts as two replicates. The
claim is decided again on the resample — the same rule, Holm correction and level picking — and the
stability is the probability that the resample's verdict equals the observed one. For n ≤ ``EXACT_UP_TO``
seeds the bootstrap is exact: every multiset of n seeds (C(2n − 1, n) of them: 126 for n = 5), each
weighted by its multinomial probability n! / (∏ kᵢ! · nⁿ); beyond, ``DRAWS`` draws of numpy's
``default_rng(SEED)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import combinations_with_replacement

import numpy as np

EXACT_UP_TO = 6
DRAWS = 200
SEED = 0
METHOD = (f"exact bootstrap over seeds (every multiset of n seeds drawn with replacement, weighted by its multinomial "
          f"probability; n ≤ {EXACT_UP_TO}), else {DRAWS} bootstrap draws (numpy default_rng({SEED}))")


def resamples(seeds: Sequence) -> Iterator[tuple[tuple, float]]:
    """(the drawn seeds, the draw's probability) of the bootstrap over ``seeds``."""
    n = len(seeds)
    if n <= EXACT_UP_TO:
        for drawn in combinations_with_replacement(seeds, n):
            counts = Counter(drawn).values()
            yield drawn, math.factorial(n) / math.prod(map(math.factorial, counts)) / n ** n
        return
    generator = np.random.default_rng(SEED)
    for _ in range(DRAWS):
        yield tuple(seeds[index] for index in generator.integers(0, n, n)), 1.0 / DRAWS


def stability(seeds: Sequence, verdict_of: Callable[[tuple], str], observed: str) -> float:
    """The bootstrap probability that ``verdict_of(drawn seeds)`` is ``observed``; NaN with fewer than 2 seeds."""
    if len(seeds) < 2:
        return math.nan
    return sum(weight for drawn, weight in resamples(list(seeds)) if verdict_of(drawn) == observed)
