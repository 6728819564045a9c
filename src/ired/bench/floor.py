"""The FLOP floor of a piece of work: its matrix FLOPs counted, and this machine's matmul throughput on its own shapes.

:func:`count_gemms` runs the work once under a dispatch mode that counts the FLOPs of every operation with
torch's own FLOP formulas (``torch.utils.flop_counter``'s registry, what ``FlopCounterMode`` counts; that mode
itself cannot watch ``autograd.grad`` over a leaf, which training does) and records every matrix product
(``mm``, ``addmm``, ``bmm``: shapes, strides, dtype, how often).
:func:`gemm_throughput` then times each distinct product alone, on fresh tensors of the same shapes and memory
layout, and returns counted FLOPs / the time those products take at the counts the work makes them: the rate the
work's matrix products reach on this machine. The floor of the work is its FLOPs divided by that rate.
:class:`GemmTimer` takes one such sample at a time (every product once, one block each), so that a benchmark can
alternate floor and work round by round: a machine whose speed drifts (a shared host) then moves both alike.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

_aten = torch.ops.aten
_GEMMS = {_aten.mm.default: "mm", _aten.addmm.default: "addmm", _aten.bmm.default: "bmm"}


@dataclass(frozen=True)
class Gemm:
    """One distinct matrix product of the work: the op, each tensor argument's (shape, stride), the dtype."""

    op: str
    operands: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    dtype: torch.dtype

    @property
    def flops(self) -> int:
        """2 m n k (bmm: times the batch), as FlopCounterMode counts it."""
        a, b = self.operands[-2][0], self.operands[-1][0]
        if self.op == "bmm":
            return 2 * a[0] * a[1] * a[2] * b[2]
        return 2 * a[0] * a[1] * b[1]


@dataclass
class GemmCount:
    """The matrix products of a piece of work and its FLOPs as torch's FLOP formulas count them."""

    flops: int
    gemms: Counter = field(default_factory=Counter)  # Gemm -> calls


class _GemmRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.gemms: Counter = Counter()
        self.flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        name = _GEMMS.get(func)
        if name is not None:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            operands = tuple((tuple(t.shape), tuple(t.stride())) for t in tensors)
            self.gemms[Gemm(name, operands, tensors[-1].dtype)] += 1
        return out


def count_gemms(work: Callable[[], object]) -> GemmCount:
    """Run ``work`` once, counting its FLOPs and recording its matrix products."""
    recorder = _GemmRecorder()
    with recorder:
        work()
    return GemmCount(recorder.flops, recorder.gemms)


def _operand(shape: tuple[int, ...], stride: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    size = 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) if all(shape) else 0
    return torch.randn(max(size, 1), dtype=dtype, device=device).as_strided(shape, stride)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _operands(gemm: Gemm, device: torch.device) -> list[torch.Tensor]:
    return [_operand(shape, stride, gemm.dtype, device) for shape, stride in gemm.operands]


def _call_seconds(op: Callable[..., Any], tensors: list[torch.Tensor], device: torch.device, block: int) -> float:
    """Seconds of one call of ``op(*tensors)``: ``block`` calls timed together."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(block):
        op(*tensors)
    _sync(device)
    return (time.perf_counter() - start) / block


def gemm_seconds(gemm: Gemm, device: torch.device, repeats: int, block: int = 4) -> float:
    """Seconds of one call of ``gemm`` on fresh operands of its shapes and layout: the median over ``repeats``
    blocks of ``block`` calls, after one warm-up block."""
    tensors, op = _operands(gemm, device), getattr(torch, gemm.op)
    times = [_call_seconds(op, tensors, device, block) for _ in range(repeats + 1)]
    return statistics.median(times[1:])


def gemm_throughput(count: GemmCount, device: torch.device, repeats: int) -> float:
    """FLOP/s of the work's matrix products: their FLOPs over their time, each timed alone at its call count."""
    seconds = sum(calls * gemm_seconds(gemm, device, repeats) for gemm, calls in count.gemms.items())
    flops = sum(calls * gemm.flops for gemm, calls in count.gemms.items())
    return flops / seconds


class GemmTimer:
    """The work's distinct matrix products on fresh operands of their shapes and layouts, ready to be timed again
    and again: :meth:`floor_seconds` is one sample of the work's floor."""

    def __init__(self, count: GemmCount, device: torch.device, block: int = 4) -> None:
        self.count = count
        self.device = device
        self.block = block
        self.products = [(calls, getattr(torch, gemm.op), _operands(gemm, device))
                         for gemm, calls in count.gemms.items()]
        self.gemm_flops = sum(calls * gemm.flops for gemm, calls in count.gemms.items())

    def throughput(self) -> float:
        """FLOP/s of the products now: each timed once over ``block`` calls, weighted by its call count."""
        seconds = sum(calls * _call_seconds(op, tensors, self.device, self.block)
                      for calls, op, tensors in self.products)
        return self.gemm_flops / seconds

    def floor_seconds(self) -> float:
        """The work's counted FLOPs over the products' throughput now."""
        return self.count.flops / self.throughput()
