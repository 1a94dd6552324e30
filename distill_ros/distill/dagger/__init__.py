"""On-policy distillation from many teachers (DAgger, Ross et al. 2011): `algorithm: dagger`.

A vector of environments, each holding one task; the student acts (or the teacher, as β or
`on_demand` decide); every visited state is labelled by its task's teacher and goes into a
capped replay buffer; the student trains on it with MSE, Huber or a Gaussian KL. Parts:
`config` (settings), `beta` (who acts), `buffer`, `losses`, `routing` (teachers per env),
`envs` and `collect` (rollouts), `algorithm` (the learner's verbs), `runner` (the loop).
"""
