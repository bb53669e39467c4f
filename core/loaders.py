"""Plain checkpoint loaders for the trained symbolic music models under ``models/checkpoints``.

Each loader returns the model in eval mode on the CPU, ready for the matching ``models.<name>.sample``.
No caching happens here: the UI caches through ``components/resources.py``. torch is imported only
when a loader is called.

Examples
--------
>>> from core.loaders import load_drums               # doctest: +SKIP
>>> from models.drums import sample                    # doctest: +SKIP
>>> pattern = sample(load_drums(), bars=2, style="rock", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from core.errors import ModelError

__all__ = ["checkpoint_path", "load_bass", "load_drums", "load_harmony", "load_melody"]

_NAMES = ("drums", "bass", "harmony", "melody")


def checkpoint_path(name: str) -> Path:
    """Path of the committed checkpoint of model ``name`` (``drums``, ``bass``, ``harmony``, ``melody``)."""
    if name not in _NAMES:
        raise ModelError(f"unknown model {name!r}; expected one of {list(_NAMES)}")
    from models.common import CHECKPOINT_DIR

    return CHECKPOINT_DIR / f"{name}.pt"


def _load(name: str, path: str | Path | None, config_cls: type, module_cls) -> object:
    from models.common import load_checkpoint

    return load_checkpoint(
        Path(path) if path is not None else checkpoint_path(name), kind=name, config_cls=config_cls,
        module_cls=module_cls,
    )  # fmt: skip


def load_drums(path: str | Path | None = None):
    """Load the drum LSTM (:class:`models.drums.DrumsLSTM`).

    Parameters
    ----------
    path : str or Path, optional
        Checkpoint file; default the committed ``models/checkpoints/drums.pt``.

    Raises
    ------
    core.errors.ModelError
        If the checkpoint is missing, corrupt, of another format version or of another model.
    """
    from models.drums import DrumsConfig, DrumsLSTM

    return _load("drums", path, DrumsConfig, DrumsLSTM)


def load_bass(path: str | Path | None = None):
    """Load the bass model (for :func:`models.bass.sample`); see :func:`load_drums` for errors."""
    from models.bass import BassConfig, build_model

    return _load("bass", path, BassConfig, build_model)


def load_harmony(path: str | Path | None = None):
    """Load the chord progression model (for :func:`models.harmony.sample`); see :func:`load_drums`."""
    from models.harmony import HarmonyConfig, build_model

    return _load("harmony", path, HarmonyConfig, build_model)


def load_melody(path: str | Path | None = None):
    """Load the melody model (for :func:`models.melody.sample`); see :func:`load_drums` for errors."""
    from models.melody import MelodyConfig, build_model

    return _load("melody", path, MelodyConfig, build_model)
