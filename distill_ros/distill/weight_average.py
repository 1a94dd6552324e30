"""Polyak averaging: an exponential moving average of a module's weights, kept beside it.

After every optimiser step the average moves towards the trained weights,
``avg <- d avg + (1 - d) w`` (Polyak and Juditsky 1992; the EMA form as in Adam's
paper, Sec. 7.2): with decay d it spans about 1 / (1 - d) updates, so update-to-update
(and, for a long enough span, round-to-round) swings of the trained weights cancel in
it. Buffers (normalisers, action bounds) are not trained: the average copies them.
Used by OneDP's generator (`onestep.ema_decay`) and the DAgger student (`dagger.ema_decay`).
"""

from __future__ import annotations

import copy

import torch


def averaged_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of `module` to hold its weight average: no gradients, evaluation mode."""
    return copy.deepcopy(module).requires_grad_(False).eval()


@torch.no_grad()
def update_average(average: torch.nn.Module, module: torch.nn.Module, decay: float) -> None:
    """One step of the average: parameters ``avg <- d avg + (1 - d) w``; buffers copied."""
    for avg, p in zip(average.parameters(), module.parameters(), strict=True):
        avg.lerp_(p, 1.0 - decay)
    for avg, b in zip(average.buffers(), module.buffers(), strict=True):
        avg.copy_(b)


@torch.no_grad()
def reset_average(average: torch.nn.Module, module: torch.nn.Module) -> None:
    """Restart the average at `module`'s weights (e.g. after a warm start loaded them)."""
    average.load_state_dict(module.state_dict())
