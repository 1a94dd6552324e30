"""Offline distillation (UniGraspTransformer style): teacher rollouts -> dataset -> student."""
