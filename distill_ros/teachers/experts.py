"""A family's scripted expert by name: for scripted teachers and SAC's demonstrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def family_expert(family: str, name: str = "") -> torch.nn.Module:
    """The family's scripted expert `name` (empty: its only one) as a module, obs -> action."""
    from distill_ros.tasks.base import get_family

    experts = get_family(family).scripted_experts or {}
    if family == "grasp" and not experts:
        from distill_ros.teachers.scripted_styles import SCRIPTED_EXPERTS as experts
    if not experts:
        raise ValueError(f"family {family!r} has no scripted expert: teachers.algo scripted "
                         "and teachers.demo_episodes need one; train SAC/PPO from scratch or "
                         "give teachers.sources")
    if not name and len(experts) > 1:
        raise ValueError(f"family {family!r} has several scripted experts {sorted(experts)}: "
                         "choose one with teachers.expert")
    key = name or next(iter(experts))
    if key not in experts:
        raise ValueError(f"teachers.expert {name!r} is not a scripted expert of family "
                         f"{family!r}; valid choices: {sorted(experts)}")
    return experts[key]().eval()
