"""Estimated cost of an attempt from a configurable price table (US dollars per million tokens).

The built-in table holds public list prices of common models; ``INTERLOCK_AI_PRICES`` (JSON,
``{"model": {"input": 0.4, "output": 1.6}}``) adds or overrides entries, for a negotiated price, a
self-hosted model (price it at 0) or a model released after this table. A model with no price has cost
``None`` on the timeline and counts only in the token budget.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "offline": (0.0, 0.0),
}


class PriceTableError(ValueError):
    pass


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, tuple[float, float]]

    @classmethod
    def from_setting(cls, setting: str) -> PriceTable:
        prices = dict(DEFAULT_PRICES)
        if not setting.strip():
            return cls(prices)
        try:
            extra = json.loads(setting)
            if not isinstance(extra, dict):
                raise TypeError("not an object")
            for model, entry in extra.items():
                prices[str(model)] = (float(entry["input"]), float(entry["output"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise PriceTableError(
                'INTERLOCK_AI_PRICES must be JSON like {"model": {"input": 0.4, "output": 1.6}} '
                f"(dollars per million tokens): {exc}") from exc
        # json.loads accepts NaN and Infinity: a NaN price makes every budget comparison False (never exceeded).
        if any(not math.isfinite(p) or p < 0 for pair in prices.values() for p in pair):
            raise PriceTableError("INTERLOCK_AI_PRICES has a negative or non-finite price")
        return cls(prices)

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        price = self.prices.get(model)
        if price is None:
            # Providers report dated snapshots ("gpt-4.1-mini-2025-04-14"): price them as their family.
            family = max((m for m in self.prices if model.startswith(m + "-")), key=len, default=None)
            price = self.prices.get(family) if family else None
        if price is None:
            return None
        return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
