"""Trained models of BeatTok Studio: config dataclass + nn.Module + sampling, training, checkpoints.

Symbolic music models: :mod:`models.drums`, :mod:`models.bass`, :mod:`models.harmony`, :mod:`models.melody`
(trained by ``python -m models.train <model>``; loaded by :mod:`core.loaders`).
"""
