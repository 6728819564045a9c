"""Schedules of the contrastive shaping: weight, margin, temperature and negative difficulty over training.

All are functions of the optimiser step, except the adaptive temperature, a feedback loop on frac_sat whose state
is checkpointed. With the default config every schedule is constant and the controller changes nothing.

- weight: 0 before ``objective.start_step``, then a linear warm-up over ``warmup_steps`` to ``weight``.
- margin (``hinge``): linear from ``margin`` to ``margin_final`` over ``margin_ramp_steps`` after start_step.
- temperature (``softplus``): fixed, or with ``adaptive_temperature`` multiplied by 1 + rate after a step whose
  frac_sat is above the band (the loss was saturated: soften it) and divided by 1 + rate below the band.
- negatives curriculum: steps, init_noise and replay_prob ramp linearly from their ``*_start`` values to the
  final ones over ``negatives.curriculum_steps`` after start_step (easy, far-from-data negatives first).
"""

from __future__ import annotations

from typing import Any

from ired.core.run_config import NegativesConfig, ObjectiveConfig
from ired.science.losses import Shaping, uses_temperature

TEMPERATURE_BOUNDS = (1e-3, 1e4)


def ramp(start: float, end: float, progress_steps: int, length: int) -> float:
    """Linear interpolation from start to end over ``length`` steps; ``end`` once done (or if length is 0)."""
    if length <= 0 or progress_steps >= length:
        return end
    frac = max(progress_steps, 0) / length
    return start + (end - start) * frac


class ContrastiveController:
    """The schedules of one run; its state (the adaptive temperature) is checkpointed."""

    def __init__(self, objective: ObjectiveConfig, negatives: NegativesConfig) -> None:
        self.objective = objective
        self.negatives = negatives
        self.temperature = objective.temperature
        self._negatives_cache: tuple[dict[str, float | int], NegativesConfig] | None = None

    def at(self, step: int) -> Shaping:
        """Weight, temperature and margin of the contrastive term and the negatives' settings for optimiser
        step ``step``."""
        return Shaping(weight=self.weight(step), temperature=self.temperature, margin=self.margin(step),
                       negatives=self.negatives_at(step))

    def weight(self, step: int) -> float:
        obj = self.objective
        if not obj.contrastive or step < obj.start_step:
            return 0.0
        return ramp(0.0, obj.weight, step - obj.start_step, obj.warmup_steps)

    def margin(self, step: int) -> float:
        obj = self.objective
        if obj.margin_final is None:
            return obj.margin
        return ramp(obj.margin, obj.margin_final, step - obj.start_step, obj.margin_ramp_steps)

    def negative_settings(self, step: int) -> dict[str, float | int]:
        """Effective steps / init_noise / replay_prob of the negative sampler at ``step``."""
        neg = self.negatives
        progress, length = step - self.objective.start_step, neg.curriculum_steps

        def pick(start: float | None, end: float) -> float:
            return end if start is None else ramp(start, end, progress, length)

        return {
            "steps": int(round(pick(neg.steps_start, neg.steps))),
            "init_noise": pick(neg.init_noise_start, neg.init_noise),
            "replay_prob": pick(neg.replay_prob_start, neg.replay_prob),
        }

    def negatives_at(self, step: int) -> NegativesConfig:
        """The negative sampler's config at ``step``: ``negatives`` itself without a curriculum, else a copy with the
        curriculum's steps / init_noise / replay_prob (the same object while they do not change)."""
        if self.negatives.curriculum_steps <= 0:
            return self.negatives
        settings = self.negative_settings(step)
        if self._negatives_cache is None or self._negatives_cache[0] != settings:
            self._negatives_cache = (settings, self.negatives.model_copy(update=settings))
        return self._negatives_cache[1]

    def observe(self, frac_sat: float | None) -> None:
        """Feedback after a step: adapt the temperature to keep frac_sat inside the band."""
        obj = self.objective
        if not obj.adaptive_temperature or not uses_temperature(obj.name) or frac_sat is None:
            return
        low, high = obj.frac_sat_band
        if frac_sat > high:
            self.temperature *= 1 + obj.temperature_rate
        elif frac_sat < low:
            self.temperature /= 1 + obj.temperature_rate
        self.temperature = min(max(self.temperature, TEMPERATURE_BOUNDS[0]), TEMPERATURE_BOUNDS[1])

    def state_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.temperature = float(state["temperature"])
