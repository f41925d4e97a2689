"""How a model's probabilities become labels: the paper's argmax, or a recipe's test-time
augmentation and (fixed or calibrated) threshold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """How a model's probabilities become labels at evaluation (recipe.tta / .threshold)."""

    tta: bool = False
    threshold: float | None = None  # None: the argmax of the two logits (the paper's)
    source: str = "argmax (paper)"


#: The paper's decision: the argmax of the two logits, no test-time augmentation.
ARGMAX = Decision()
