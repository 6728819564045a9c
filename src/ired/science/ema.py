"""When and how the evaluation (EMA) weights follow the raw weights: one pure rule per ``train.ema_rule``.

``ema_action(step, train)`` says what to do after optimiser step ``step`` (1 for the first step):
``"copy"`` (EMA := raw weights), a decay ``d`` (EMA := d * EMA + (1 - d) * raw) or ``None`` (leave the EMA).

- ``reference`` (default; the IRED release, which uses the ema-pytorch library's ``EMA`` with
  update_after_step 100, power 2/3, inv_gamma 1, update_every 10, beta 0.995, one ``update()`` per optimiser
  step): the EMA acts on steps 1, 1 + every, 1 + 2 every, ...; on those steps it copies the raw weights while
  step - 1 <= ema_start, copies them once more on the first acting step after that, and afterwards averages
  with the warm-up decay min(ema_decay, 1 - (1 + e)^(-ema_power)), e = step - ema_start - 1.
  (ema-pytorch's counter is the number of ``update()`` calls made before the current one, so its "step" is our
  step - 1, and the decay it computes from its already-incremented counter gives e = step - update_after_step - 1.
  Its first average after the copy phase starts by copying the raw weights, since its ``initted`` flag is still
  false, so that average changes nothing: with the defaults the EMA is the raw weights at step 111 too, and the
  first real average is at step 121, e = 20. ``python -m benchmarks.parity_lockstep`` compares the two step by step.)
- ``fixed`` (the behaviour of ired before it followed the release): the EMA copies the raw weights on every step
  below ema_start, then averages with the constant decay ema_decay on every step divisible by ema_every. With
  ema_start 0 the EMA starts from the random initialisation: after 2,000 steps at decay 0.995 every 10 steps,
  0.995^200 = 37% of it is still the initial weights.
"""

from __future__ import annotations

from typing import Literal, Protocol

EmaAction = Literal["copy"] | float | None


class _EmaKeys(Protocol):
    @property
    def ema_rule(self) -> str: ...  # read-only: a config's Literal of the rules is one

    ema_decay: float
    ema_every: int
    ema_start: int
    ema_power: float


def warmup_decay(step: int, train: _EmaKeys) -> float:
    """The reference's decay at ``step`` (> ema_start + 1): min(ema_decay, 1 - (1 + e)^(-power))."""
    e = step - train.ema_start - 1
    return min(train.ema_decay, 1.0 - (1.0 + e) ** (-train.ema_power))


def ema_action(step: int, train: _EmaKeys) -> EmaAction:
    if train.ema_rule == "reference":
        if (step - 1) % train.ema_every:
            return None
        if step - 1 <= train.ema_start + train.ema_every:  # the copy phase, and ema-pytorch's first average
            return "copy"
        return warmup_decay(step, train)
    if train.ema_rule == "fixed":
        if step < train.ema_start:
            return "copy"
        return train.ema_decay if step % train.ema_every == 0 else None
    raise ValueError(f"train.ema_rule={train.ema_rule!r} not allowed (allowed: reference, fixed)")
