"""K-pop generator: spectral LSTM features, training, generation and audio inversion.

The model (:mod:`models.kpop`) learns log-mel frames of 16 kHz mono audio and generates new frames
from a *partially random seed*: a one-second snippet of a catalogue song mixed with noise. The
frames are turned back into sound with a pseudo-inverse of the mel filter bank and fast Griffin-Lim
(momentum 0.99), upsampled to 44.1 kHz stereo and mastered with :func:`core.audio.loudness.master`.

Pipeline
--------
``build_dataset`` (songs -> mel frames, with checks and caps) -> ``train`` (validation split, Laplace
NLL, progress/stop/resume, bounded time) -> checkpoint bytes -> ``load_model`` ->
``generate_audio`` (prime, sample, invert, master). ``copy_score`` measures whether generated frames
copy a stretch of the training frames verbatim.

Limits (shown in the UI)
------------------------
:data:`MIN_SONGS`, :data:`MAX_SONGS`, :data:`MIN_CATALOGUE_SECONDS`, :data:`MAX_CATALOGUE_SECONDS`,
:data:`MAX_EPOCHS`, :data:`MAX_TRAIN_SECONDS`, :data:`MAX_GENERATE_SECONDS`.

Performance (2 CPU cores): 30 s of audio generate in about 2-3 s (LSTM ~0.5 s, Griffin-Lim 32
iterations ~1.5 s, resampling and mastering ~0.3 s); training runs at ~20-30k frames/s on one thread.

torch and librosa are imported inside the functions that need them.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from core.audio.checks import check_signal
from core.config import SAMPLE_RATE
from core.errors import CancelledError, InputError, LimitError, ModelError
from core.progress import ProgressFn, report

if TYPE_CHECKING:  # pragma: no cover
    from models.kpop import KpopConfig, SpectralLSTM

#: The shipped default model (trained on POP909 rendered with the General MIDI soundfont).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "models" / "checkpoints" / "kpop_default.pt"

#: Fewest usable (non-silent) songs a training needs.
MIN_SONGS = 2
#: Most songs one training accepts.
MAX_SONGS = 200
#: Least total audio a training needs (seconds).
MIN_CATALOGUE_SECONDS = 10.0
#: Most audio one training uses (seconds); longer catalogues are cut here with a warning.
MAX_CATALOGUE_SECONDS = 3600.0
#: Most epochs per training run.
MAX_EPOCHS = 500
#: Longest wall time of one training run (seconds); the run stops and saves when it is reached.
MAX_TRAIN_SECONDS = 1800.0
#: Longest audio one generation makes (seconds).
MAX_GENERATE_SECONDS = 120.0
#: A song whose RMS level is below this (dBFS) counts as silent and is skipped.
SILENCE_DBFS = -60.0
#: Songs are normalized to this RMS level (dBFS) before features are computed.
TARGET_RMS_DBFS = -20.0
#: Catalogue snippets stored in a checkpoint for priming, and their length in frames (1 s).
N_PRIMES = 8
PRIME_FRAMES = 64
#: Default share of the catalogue collage in the frames fed back during generation.
DEFAULT_GUIDE = 0.3
#: Copy detection: steps closer than this RMS distance (normalized units) count as matching. At 0.35
#: unseen POP909 songs match the training songs in runs of 0.1-0.6 s; a verbatim copy matches throughout.
COPY_THRESHOLD = 0.35
#: Griffin-Lim iterations used by :func:`generate_audio`.
GRIFFIN_LIM_ITERS = 32
#: Largest accepted checkpoint file (bytes).
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024

_STFT_REF = 256.0  # |STFT| of a full-scale sine with a 1024-point Hann window (sum(window) / 2)


# --------------------------------------------------------------------------- features


def _config(cfg: KpopConfig | None) -> KpopConfig:
    from models.kpop import KpopConfig

    return cfg if cfg is not None else KpopConfig()


def to_model_audio(y: np.ndarray, *, sr: int, cfg: KpopConfig | None = None) -> np.ndarray:
    """Mix down to mono and resample to the model rate (16 kHz); the level is left unchanged.

    Parameters
    ----------
    y : numpy.ndarray
        float audio ``(channels, samples)`` (or 1-D mono).
    sr : int
        Its sample rate in Hz (8000-192000).
    cfg : KpopConfig, optional
        Feature settings (default config).

    Returns
    -------
    numpy.ndarray
        float32 1-D mono signal at ``cfg.sr``.
    """
    return _mono_at_model_rate(check_signal(y, sr=sr), sr=int(sr), cfg=_config(cfg))


def _mono_at_model_rate(arr: np.ndarray, *, sr: int, cfg: KpopConfig) -> np.ndarray:
    """:func:`to_model_audio` of an array :func:`~core.audio.checks.check_signal` has accepted."""
    from core.audio.io import resample

    mono = arr.astype(np.float32, copy=False).mean(axis=0, keepdims=True)
    return resample(mono, sr_in=sr, sr_out=cfg.sr)[0]


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of a signal in dBFS (``-inf`` for digital silence).

    Examples
    --------
    >>> round(rms_dbfs(np.full(100, 0.1, np.float32)), 1)
    -20.0
    """
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * math.log10(r) if r > 0 else -math.inf


def _mel_basis(cfg: KpopConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(
        sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    ).astype(np.float32)


def mel_db(x: np.ndarray, *, cfg: KpopConfig | None = None, basis: np.ndarray | None = None) -> np.ndarray:
    """Log-mel magnitude frames (dB re full scale, floored at ``cfg.db_floor``) of a 16 kHz mono signal.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float32 signal at ``cfg.sr``.
    cfg : KpopConfig, optional
        Feature settings.
    basis : numpy.ndarray, optional
        Precomputed mel filter bank ``(n_mels, n_fft // 2 + 1)``.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_frames, n_mels)``.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> m = mel_db((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    >>> m.shape[1], bool(m.max() > -20)
    (128, True)
    """
    import torch

    cfg = _config(cfg)
    basis = _mel_basis(cfg) if basis is None else basis
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    if xt.numel() < cfg.n_fft:
        xt = torch.nn.functional.pad(xt, (0, cfg.n_fft - xt.numel()))
    spec = torch.stft(
        xt, cfg.n_fft, cfg.hop, window=torch.hann_window(cfg.n_fft), center=True, return_complex=True
    ).abs()
    mel = torch.as_tensor(basis) @ spec / _STFT_REF
    floor = 10.0 ** (cfg.db_floor / 20.0)
    db = 20.0 * torch.log10(mel.clamp(min=floor))
    return db.T.contiguous().numpy().astype(np.float32)


@dataclass
class FrameDataset:
    """Log-mel frames of a catalogue, one array per song.

    Attributes
    ----------
    songs : list of numpy.ndarray
        ``(n_frames, n_mels)`` float32 dB frames per usable song.
    names : list of str
        Song names (for messages).
    warnings : list of str
        Songs skipped or cut, in words.
    seconds : float
        Total audio used.
    """

    songs: list[np.ndarray]
    names: list[str]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_frames(self) -> int:
        """Total frames over all songs."""
        return int(sum(s.shape[0] for s in self.songs))


def song_frames(
    y: np.ndarray,
    *,
    sr: int,
    name: str = "song",
    cfg: KpopConfig | None = None,
    basis: np.ndarray | None = None,
    max_seconds: float = MAX_CATALOGUE_SECONDS,
) -> tuple[np.ndarray | None, str | None]:
    """Log-mel frames of one song for training, or ``None`` with the reason it was skipped.

    The song is mixed to mono, resampled to ``cfg.sr``, cut to ``max_seconds``, normalized to
    :data:`TARGET_RMS_DBFS` RMS and analysed with :func:`mel_db`.

    Returns
    -------
    frames : numpy.ndarray or None
        ``(n_frames, n_mels)`` dB frames, ``None`` when the song is silent or too short.
    warning : str or None
        Why the song was skipped or cut.
    """
    cfg = _config(cfg)
    arr = check_signal(y, sr=sr, what=name)
    sr = int(sr)
    warning = None
    if arr.shape[1] > max_seconds * sr:
        arr = arr[:, : int(max_seconds * sr)]  # cut before resampling: a 4-hour file is never resampled whole
        limit = MAX_CATALOGUE_SECONDS / 60
        warning = (
            f"{name}: cut to {arr.shape[1] / sr:.0f} s, the catalogue limit of {limit:.0f} min was reached"
        )
    x = _mono_at_model_rate(arr, sr=sr, cfg=cfg)
    level = rms_dbfs(x)
    if level < SILENCE_DBFS:
        lvl = "digital silence" if math.isinf(level) else f"{level:.0f} dBFS"
        return None, f"{name}: skipped, it is silent ({lvl}; needs more than {SILENCE_DBFS:.0f} dBFS)"
    if x.size < cfg.n_fft * 4:
        return None, f"{name}: skipped, too short ({x.size / cfg.sr:.2f} s)"
    x = x * np.float32(10.0 ** ((TARGET_RMS_DBFS - rms_dbfs(x)) / 20.0))
    return mel_db(x, cfg=cfg, basis=basis), warning


def _check_song_count(n: int) -> None:
    if n == 0:
        raise InputError(f"no songs to train on: choose at least {MIN_SONGS} songs")
    if n > MAX_SONGS:
        raise LimitError(f"{n} songs is too many for one training: at most {MAX_SONGS}")


def build_dataset(
    tracks: Sequence[np.ndarray],
    *,
    sr: int,
    names: Sequence[str] | None = None,
    cfg: KpopConfig | None = None,
    max_seconds: float = MAX_CATALOGUE_SECONDS,
    progress: ProgressFn | None = None,
) -> FrameDataset:
    """Turn a catalogue of songs into log-mel frames, skipping silent songs and capping the total.

    Each song is mixed to mono, resampled to 16 kHz, normalized to :data:`TARGET_RMS_DBFS` RMS and
    analysed into ``cfg.n_mels`` log-mel bands. Songs quieter than :data:`SILENCE_DBFS` are skipped
    with a warning; once the total reaches ``max_seconds`` the rest is cut with a warning.

    Parameters
    ----------
    tracks : sequence of numpy.ndarray
        float32 ``(channels, samples)`` songs, all at ``sr``.
    sr : int
        Sample rate of the songs in Hz.
    names : sequence of str, optional
        Song names for messages (default ``song 1``, ``song 2``, ...).
    cfg : KpopConfig, optional
        Feature settings.
    max_seconds : float
        Cap on the total audio used (at most :data:`MAX_CATALOGUE_SECONDS`).
    progress : callable, optional
        Progress callback.

    Returns
    -------
    FrameDataset

    Raises
    ------
    InputError
        No songs, too many songs, fewer than :data:`MIN_SONGS` non-silent songs, or less than
        :data:`MIN_CATALOGUE_SECONDS` of audio.
    """
    cfg = _config(cfg)
    tracks = list(tracks)
    _check_song_count(len(tracks))
    names = list(names) if names is not None else [f"song {i + 1}" for i in range(len(tracks))]
    if len(names) != len(tracks):
        raise InputError(f"got {len(names)} names for {len(tracks)} songs")
    cap = min(float(max_seconds), MAX_CATALOGUE_SECONDS)
    basis = _mel_basis(cfg)
    songs: list[np.ndarray] = []
    used: list[str] = []
    warnings: list[str] = []
    total = 0.0
    for i, (y, name) in enumerate(zip(tracks, names, strict=True)):
        report(progress, i / len(tracks), f"analysing {name}")
        if total >= cap:
            warnings.append(f"{name}: skipped, the catalogue limit of {cap / 60:.0f} min was reached")
            continue
        frames, warning = song_frames(y, sr=sr, name=name, cfg=cfg, basis=basis, max_seconds=cap - total)
        if warning:
            warnings.append(warning)
        if frames is None:
            continue
        songs.append(frames)
        used.append(name)
        total += frames.shape[0] * cfg.hop / cfg.sr
    report(progress, 1.0, "catalogue analysed")
    if len(songs) < MIN_SONGS:
        detail = f" ({'; '.join(warnings)})" if warnings else ""
        raise InputError(
            f"need at least {MIN_SONGS} non-silent songs to train (one part is held out for validation), "
            f"got {len(songs)}{detail}"
        )
    if total < MIN_CATALOGUE_SECONDS:
        raise InputError(
            f"the catalogue has {total:.1f} s of audio; training needs at least {MIN_CATALOGUE_SECONDS:.0f} s"
        )
    return FrameDataset(songs=songs, names=used, warnings=warnings, seconds=total)


@dataclass
class Catalogue:
    """Decoded songs ready for :func:`train`: mono float32 ``(1, n)`` arrays at ``sr``."""

    tracks: list[np.ndarray]
    names: list[str]
    sr: int
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total decoded audio in seconds."""
        return float(sum(t.shape[1] for t in self.tracks)) / self.sr


def load_catalogue(
    files: Sequence[tuple[str, bytes]],
    *,
    cfg: KpopConfig | None = None,
    limits: Any = None,
    max_seconds: float = MAX_CATALOGUE_SECONDS,
    progress: ProgressFn | None = None,
) -> Catalogue:
    """Decode uploaded or library files for training, skipping corrupt ones and capping the total.

    Files are decoded straight to the model rate (16 kHz) and mixed to mono, so that an hour of
    audio costs ~230 MB of memory. Each file's duration is read from its header first; once
    ``max_seconds`` are reached the remaining files are skipped without being decoded. Corrupt or
    over-limit files are skipped with a warning.

    Parameters
    ----------
    files : sequence of (str, bytes)
        ``(filename, data)`` pairs; the extension picks the decoder (see ``core.audio.io``).
    cfg : KpopConfig, optional
        Model settings (for the rate).
    limits : core.audio.io.AudioLimits, optional
        Per-file decode limits (default: from the settings).
    max_seconds : float
        Cap on the total audio (at most :data:`MAX_CATALOGUE_SECONDS`).
    progress : callable, optional
        Progress callback.

    Returns
    -------
    Catalogue

    Raises
    ------
    InputError
        No files, too many files, or no file could be decoded.
    """
    from core.audio.io import decode, probe

    cfg = _config(cfg)
    files = list(files)
    _check_song_count(len(files))
    cap = min(float(max_seconds), MAX_CATALOGUE_SECONDS)
    tracks, names, warnings = [], [], []
    total = 0.0
    for i, (name, data) in enumerate(files):
        report(progress, i / len(files), f"decoding {name}")
        if total >= cap:
            warnings.append(f"{name}: skipped, the catalogue limit of {cap / 60:.0f} min was reached")
            continue
        try:
            info = probe(data, filename=name)
            y = decode(data, filename=name, sr=cfg.sr, limits=limits)
        except InputError as exc:  # AudioDecodeError and LimitError are InputErrors
            warnings.append(f"{name}: skipped ({exc})")
            continue
        mono = y.mean(axis=0, keepdims=True).astype(np.float32)
        del y
        room = int((cap - total) * cfg.sr)
        if mono.shape[1] > room:
            mono = mono[:, :room]
            warnings.append(
                f"{name}: cut to {room / cfg.sr:.0f} s of {info.duration_s:.0f} s, "
                f"the catalogue limit of {cap / 60:.0f} min was reached"
            )
        tracks.append(mono)
        names.append(name)
        total += mono.shape[1] / cfg.sr
    report(progress, 1.0, "songs decoded")
    if not tracks:
        raise InputError("none of the files could be read as audio: " + "; ".join(warnings))
    return Catalogue(tracks=tracks, names=names, sr=cfg.sr, warnings=warnings)


# --------------------------------------------------------------------------- checkpoints


@dataclass
class LoadedModel:
    """A model ready to generate: module, config, normalization, prime snippets and metadata."""

    model: SpectralLSTM
    cfg: KpopConfig
    mean: np.ndarray
    std: np.ndarray
    primes: np.ndarray
    history: dict
    meta: dict
    inverse: np.ndarray

    def normalize(self, db: np.ndarray) -> np.ndarray:
        """dB frames -> normalized frames."""
        return ((db - self.mean) / self.std).astype(np.float32)

    def denormalize(self, z: np.ndarray) -> np.ndarray:
        """Normalized frames -> dB frames."""
        return (z * self.std + self.mean).astype(np.float32)


def checkpoint_dict(
    model: SpectralLSTM,
    *,
    mean: np.ndarray,
    std: np.ndarray,
    primes: np.ndarray,
    history: dict | None = None,
    meta: dict | None = None,
) -> dict:
    """Build the checkpoint dict (see :mod:`models.kpop` for the layout)."""
    import torch

    from models.kpop import FORMAT_VERSION

    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "config": model.cfg.to_dict(),
        "format_version": FORMAT_VERSION,
        "norm": {
            "mean": torch.as_tensor(mean, dtype=torch.float32),
            "std": torch.as_tensor(std, dtype=torch.float32),
        },
        "primes": torch.as_tensor(primes, dtype=torch.float16),
        "history": history or {},
        "meta": meta or {},
    }


def checkpoint_bytes(ckpt: dict) -> bytes:
    """Serialize a checkpoint dict with ``torch.save``."""
    import torch

    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _read_checkpoint(source: bytes | str | Path | dict) -> dict:
    import torch

    if isinstance(source, dict):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"model checkpoint not found: {path.name}")
        if path.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise ModelError(
                f"model checkpoint {path.name} is larger than {MAX_CHECKPOINT_BYTES // 2**20} MB"
            )
        data = path.read_bytes()
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise ModelError(f"model checkpoint is larger than {MAX_CHECKPOINT_BYTES // 2**20} MB")
    else:
        raise ModelError(f"cannot read a model checkpoint from {type(source).__name__}")
    if not data:
        raise ModelError("model checkpoint is empty")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling/zip error means the file is not a usable checkpoint
        raise ModelError(f"model checkpoint is corrupt or not a K-pop model ({type(exc).__name__})") from exc
    if not isinstance(obj, dict):
        raise ModelError("model checkpoint is not a K-pop model (not a checkpoint dict)")
    return obj


def load_model(source: bytes | str | Path | dict | None = None) -> LoadedModel:
    """Load a K-pop checkpoint (default: the shipped model) and check that it is compatible.

    Parameters
    ----------
    source : bytes, path or dict, optional
        Checkpoint bytes, a file path, or an already loaded checkpoint dict;
        ``None`` loads :data:`DEFAULT_CHECKPOINT`.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        Missing, corrupt, wrong format version, other model kind or mismatched weights.
    """
    import torch

    from models.kpop import FORMAT_VERSION, KpopConfig, SpectralLSTM

    ckpt = _read_checkpoint(DEFAULT_CHECKPOINT if source is None else source)
    missing = [k for k in ("model", "config", "format_version", "norm") if k not in ckpt]
    if missing:
        raise ModelError(f"model checkpoint is not a K-pop model: missing {', '.join(missing)}")
    version = ckpt["format_version"]
    if version != FORMAT_VERSION:
        raise ModelError(
            f"model checkpoint has format version {version!r}; this version of the app reads version "
            f"{FORMAT_VERSION}: retrain the model"
        )
    try:
        cfg = KpopConfig.from_dict(dict(ckpt["config"]))
        model = SpectralLSTM(cfg)
        model.load_state_dict(ckpt["model"])
        mean = np.asarray(ckpt["norm"]["mean"], dtype=np.float32)
        std = np.asarray(ckpt["norm"]["std"], dtype=np.float32)
    except (RuntimeError, TypeError, KeyError, ValueError) as exc:
        raise ModelError(f"model checkpoint does not match the K-pop model: {str(exc)[:200]}") from exc
    if mean.shape != (cfg.n_mels,) or std.shape != (cfg.n_mels,) or not np.all(std > 0):
        raise ModelError(f"model checkpoint has bad normalization statistics (expected {cfg.n_mels} bands)")
    primes = ckpt.get("primes")
    primes = (
        np.asarray(primes.float() if isinstance(primes, torch.Tensor) else primes, dtype=np.float32)
        if primes is not None
        else np.zeros((0, 0, cfg.n_mels), np.float32)
    )
    if primes.ndim != 3 or primes.shape[2] != cfg.n_mels:
        primes = np.zeros((0, 0, cfg.n_mels), np.float32)
    model.eval()
    return LoadedModel(
        model=model,
        cfg=cfg,
        mean=mean,
        std=std,
        primes=primes,
        history=dict(ckpt.get("history") or {}),
        meta=dict(ckpt.get("meta") or {}),
        inverse=np.linalg.pinv(_mel_basis(cfg)).astype(np.float32),
    )


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    checkpoint : bytes
        The best (lowest validation loss) weights as checkpoint bytes.
    history : dict
        ``epoch``, ``train_loss``, ``val_loss`` (Gaussian NLL) and ``val_l1`` (mean absolute error of
        the predicted mean, normalized units) per evaluated epoch, continued across resumes.
    baselines : dict
        ``repeat_last_l1``, ``mean_frame_l1`` and ``mean_frame_nll`` on the same validation frames.
    stopped : str or None
        ``"cancelled"`` or ``"time"`` when the run ended early, else ``None``.
    warnings : list of str
        Songs skipped or cut.
    train_frames : int
        Training frames in the data set.
    frames_per_second : float
        Training throughput (frames processed per wall second).
    seconds : float
        Wall time.
    """

    checkpoint: bytes
    history: dict
    baselines: dict
    stopped: str | None
    warnings: list[str]
    train_frames: int
    frames_per_second: float
    seconds: float

    @property
    def best_val_loss(self) -> float:
        """Lowest validation loss in the history."""
        return float(min(self.history["val_loss"])) if self.history.get("val_loss") else math.inf


@dataclass
class _Split:
    train: list[np.ndarray]
    val: list[np.ndarray]


def split_dataset(ds: FrameDataset, *, val_fraction: float, seed: int, min_val_frames: int) -> _Split:
    """Hold out whole songs (five songs or more) or the tail of every song (fewer) for validation."""
    n = len(ds.songs)
    if n >= 5:
        n_val = max(1, round(val_fraction * n))
        order = np.random.default_rng(seed).permutation(n)
        val_idx = set(order[:n_val].tolist())
        return _Split(
            train=[s for i, s in enumerate(ds.songs) if i not in val_idx],
            val=[s for i, s in enumerate(ds.songs) if i in val_idx],
        )
    train, val = [], []
    for s in ds.songs:
        k = max(min_val_frames, round(val_fraction * s.shape[0]))
        k = min(k, s.shape[0] // 2)
        train.append(s[: s.shape[0] - k])
        val.append(s[s.shape[0] - k :])
    return _Split(train=train, val=val)


def _pick_primes(songs: list[np.ndarray], *, n: int, length: int, seed: int) -> np.ndarray:
    """Choose ``n`` loud-enough snippets of ``length`` normalized frames from the songs."""
    rng = np.random.default_rng(seed)
    cands = [s for s in songs if s.shape[0] >= length]
    if not cands:
        return np.zeros((0, length, songs[0].shape[1]), np.float32)
    out = []
    for k in range(n):
        s = cands[k % len(cands)]
        energy = s.mean(axis=1)
        starts = np.arange(0, s.shape[0] - length + 1, max(1, length // 4))
        scores = np.array([energy[a : a + length].mean() for a in starts])
        good = starts[scores >= np.median(scores)]
        out.append(s[int(rng.choice(good)) :][:length])
    return np.stack(out).astype(np.float32)


def _baselines(val_steps: list[np.ndarray], group: int) -> dict:
    """Baselines on the validation targets.

    ``repeat_last_l1`` and ``mean_frame_l1``: mean absolute error of "repeat the last frame" and of
    "predict the mean frame" (normalized units, comparable with ``val_l1``); ``mean_frame_nll``: the
    NLL per value of the training-set statistics alone (a unit Gaussian in normalized units,
    comparable with ``val_loss``).
    """
    rep, mean, sq, count = 0.0, 0.0, 0.0, 0
    for s in val_steps:
        if s.shape[0] < 2:
            continue
        target = s[1:]
        d = target.shape[1] // group
        last = np.tile(s[:-1, -d:], (1, group))
        rep += float(np.abs(target - last).sum())
        mean += float(np.abs(target).sum())
        sq += float(np.square(target, dtype=np.float64).sum())
        count += target.size
    n = max(count, 1)
    return {
        "repeat_last_l1": rep / n,
        "mean_frame_l1": mean / n,
        "mean_frame_nll": 0.5 * sq / n + 0.5 * math.log(2 * math.pi),
    }


def train(
    tracks: Sequence[np.ndarray] | FrameDataset,
    *,
    sr: int,
    epochs: int,
    names: Sequence[str] | None = None,
    cfg: KpopConfig | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    batch_size: int = 32,
    seq_steps: int = 64,
    lr: float = 2e-3,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_from: bytes | str | Path | dict | None = None,
    max_seconds: float | None = None,
    meta: dict | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a spectral LSTM on a catalogue and return the best checkpoint.

    The validation part (see :func:`split_dataset`) is never trained on; the loss is the Gaussian NLL
    of the next group of normalized frames. ``should_stop`` is checked before every batch and
    ``max_seconds`` bounds the wall time: either ends the run early, after which the best weights so
    far are evaluated and returned (``stopped`` tells why). ``resume_from`` continues from a checkpoint:
    its weights, normalization and history are kept and new epochs are appended.

    Parameters
    ----------
    tracks : sequence of numpy.ndarray or FrameDataset
        Songs ``(channels, samples)`` at ``sr``, or a data set from :func:`build_dataset`.
    sr : int
        Sample rate of ``tracks``.
    epochs : int
        Epochs to run (1 to :data:`MAX_EPOCHS`).
    names : sequence of str, optional
        Song names for messages.
    cfg : KpopConfig, optional
        Model settings (ignored when resuming: the checkpoint's config is used).
    val_fraction : float
        Part held out for validation, 0.05-0.5.
    seed : int
        Seed of the split, the initial weights and the batch order.
    batch_size, seq_steps : int
        Batch size and training window length in LSTM steps.
    lr : float
        Adam learning rate.
    progress : callable, optional
        ``progress(fraction, message)``; it may raise :class:`CancelledError` to stop.
    should_stop : callable, optional
        Returns ``True`` to stop after saving what was learned.
    resume_from : bytes, path or dict, optional
        Checkpoint to continue from.
    max_seconds : float, optional
        Wall-time budget (default and maximum :data:`MAX_TRAIN_SECONDS`).
    meta : dict, optional
        Extra metadata stored in the checkpoint.
    on_epoch : callable, optional
        Called with a copy of the history after every evaluated epoch (for live loss curves).

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        Bad catalogue or parameters (see :func:`build_dataset`).
    ModelError
        ``resume_from`` is missing, corrupt or incompatible.
    """
    import torch

    from models.kpop import SpectralLSTM, frames_to_steps

    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise InputError(f"epochs must be an integer from 1 to {MAX_EPOCHS}, got {epochs!r}")
    if not 0.05 <= float(val_fraction) <= 0.5:
        raise InputError(f"val_fraction must be between 0.05 and 0.5, got {val_fraction!r}")
    budget = MAX_TRAIN_SECONDS if max_seconds is None else float(max_seconds)
    if not 0 < budget <= MAX_TRAIN_SECONDS:
        raise InputError(f"max_seconds must be between 0 and {MAX_TRAIN_SECONDS:.0f}, got {max_seconds!r}")
    t0 = time.perf_counter()

    resumed = load_model(resume_from) if resume_from is not None else None
    cfg = resumed.cfg if resumed is not None else _config(cfg)
    if isinstance(tracks, FrameDataset):
        ds = tracks
    else:
        ds = build_dataset(tracks, sr=sr, names=names, cfg=cfg, progress=_sub(progress, 0.0, 0.05))

    g = cfg.group
    split = split_dataset(ds, val_fraction=val_fraction, seed=seed, min_val_frames=8 * g)
    if resumed is not None:
        mean, std = resumed.mean, resumed.std
    else:
        allf = np.concatenate(split.train, axis=0)
        mean = allf.mean(axis=0).astype(np.float32)
        std = np.maximum(allf.std(axis=0), 1.0).astype(np.float32)

    def to_steps(frames: np.ndarray) -> np.ndarray:
        z = (frames - mean) / std
        return frames_to_steps(torch.as_tensor(z, dtype=torch.float32), g).numpy()

    train_steps = [to_steps(s) for s in split.train]
    val_steps = [to_steps(s)[:4000] for s in split.val]
    longest = max(s.shape[0] for s in train_steps)
    seq = int(min(seq_steps, longest - 1))
    if seq < 4:
        raise InputError("songs are too short to train on: each needs at least a few seconds of audio")
    windows = [
        (i, a) for i, s in enumerate(train_steps) for a in range(0, s.shape[0] - seq, max(1, seq // 2))
    ]
    if not windows:
        raise InputError("songs are too short to train on: each needs at least a few seconds of audio")
    baselines = _baselines(val_steps, g)

    torch.manual_seed(seed)
    model = SpectralLSTM(cfg)
    if resumed is not None:
        model.load_state_dict(resumed.model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list] = {"epoch": [], "train_loss": [], "val_loss": [], "val_l1": []}
    if resumed is not None:
        for k in history:
            history[k] = list(resumed.history.get(k, []))
    start_epoch = int(history["epoch"][-1]) if history["epoch"] else 0
    prime_src = [(s - mean) / std for s in split.train]
    primes = resumed.primes if resumed is not None and resumed.primes.size else None
    if primes is None:
        primes = _pick_primes(prime_src, n=N_PRIMES, length=PRIME_FRAMES, seed=seed)

    def evaluate() -> tuple[float, float]:
        model.eval()
        nll, l1, count = 0.0, 0.0, 0
        with torch.no_grad():
            for s in val_steps:
                if s.shape[0] < 2:
                    continue
                x = torch.as_tensor(s[None])
                mu, aux, _ = model(x[:, :-1])
                tgt = x[:, 1:]
                nll += float(model.nll(mu, aux, tgt)) * tgt.numel()
                l1 += float((mu - tgt).abs().sum())
                count += tgt.numel()
        model.train()
        return nll / max(count, 1), l1 / max(count, 1)

    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_val = math.inf
    if resumed is not None:
        best_val, _ = evaluate()
    rng = np.random.default_rng(seed + start_epoch)
    batches_per_epoch = math.ceil(len(windows) / batch_size)
    total_batches = epochs * batches_per_epoch
    frames_done = 0
    stopped: str | None = None
    t_train = time.perf_counter()
    done_batches = 0
    model.train()
    for e in range(epochs):
        epoch = start_epoch + e + 1
        order = rng.permutation(len(windows))
        run_loss, run_n = 0.0, 0
        for b in range(batches_per_epoch):
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
            if done_batches > 0 and time.perf_counter() - t0 > budget:
                stopped = "time"
                break
            idx = order[b * batch_size : (b + 1) * batch_size]
            batch = np.stack(
                [train_steps[windows[j][0]][windows[j][1] : windows[j][1] + seq + 1] for j in idx]
            )
            x = torch.as_tensor(batch)
            inp = x[:, :-1]
            if cfg.input_noise > 0:
                inp = inp + cfg.input_noise * torch.randn_like(inp)
            mu, aux, _ = model(inp)
            loss = model.nll(mu, aux, x[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_v = loss.item()
            run_loss += loss_v * len(idx)
            run_n += len(idx)
            frames_done += len(idx) * seq * g
            done_batches += 1
            try:
                report(
                    progress,
                    0.05 + 0.9 * done_batches / total_batches,
                    f"epoch {epoch} ({e + 1}/{epochs}), batch {b + 1}/{batches_per_epoch}, loss {loss_v:.3f}",
                )
            except CancelledError:
                stopped = "cancelled"
                break
        if run_n == 0 and stopped:
            break
        val_loss, val_l1 = evaluate()
        history["epoch"].append(epoch if not stopped else round(epoch - 1 + b / batches_per_epoch, 3))
        history["train_loss"].append(run_loss / max(run_n, 1))
        history["val_loss"].append(val_loss)
        history["val_l1"].append(val_l1)
        if val_loss < best_val:
            best_val = val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch({k: list(v) for k, v in history.items()})
        if stopped:
            break
    train_wall = time.perf_counter() - t_train
    model.load_state_dict(best_state)
    model.eval()
    meta_all = {
        **(resumed.meta if resumed is not None else {}),
        "songs": len(ds.songs),
        "seconds": round(ds.seconds, 1),
        "train_frames": int(sum(s.shape[0] for s in split.train)),
        "val_frames": int(sum(s.shape[0] for s in split.val)),
        "baselines": baselines,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(meta or {}),
    }
    ckpt = checkpoint_dict(model, mean=mean, std=std, primes=primes, history=history, meta=meta_all)
    report(progress, 1.0, "stopped early, best model saved" if stopped else "training finished")
    return TrainResult(
        checkpoint=checkpoint_bytes(ckpt),
        history=history,
        baselines=baselines,
        stopped=stopped,
        warnings=list(ds.warnings),
        train_frames=meta_all["train_frames"],
        frames_per_second=frames_done / train_wall if train_wall > 0 else 0.0,
        seconds=time.perf_counter() - t0,
    )


def _sub(progress: ProgressFn | None, lo: float, hi: float) -> ProgressFn | None:
    """Map a callback's ``[0, 1]`` onto ``[lo, hi]`` of ``progress``."""
    if progress is None:
        return None
    return lambda f, m: progress(lo + (hi - lo) * f, m)


# --------------------------------------------------------------------------- generation


class GeneratedAudio(NamedTuple):
    """Result of :func:`generate_audio`: unpacks as ``y, spectrogram``."""

    #: float32 ``(2, n)`` mastered audio at 44.1 kHz.
    y: np.ndarray
    #: float32 ``(n_mels, n_frames)`` generated log-mel frames in dB (the model's view of the audio).
    spectrogram: np.ndarray


def _check_number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InputError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise InputError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
    return v


def _snippet_source(lm: LoadedModel, *, seed_audio: np.ndarray | None, seed_sr: int) -> list[np.ndarray]:
    """Normalized catalogue frames to take seed snippets from: the seed song, else the stored primes."""
    cfg = lm.cfg
    if seed_audio is not None:
        x = to_model_audio(seed_audio, sr=seed_sr, cfg=cfg)
        level = rms_dbfs(x)
        if level < SILENCE_DBFS:
            raise InputError(f"the seed song is silent ({level:.0f} dBFS); choose a song with sound in it")
        x = x * np.float32(10.0 ** ((TARGET_RMS_DBFS - level) / 20.0))
        frames = lm.normalize(mel_db(x, cfg=cfg))
        if frames.shape[0] < PRIME_FRAMES:
            pad = np.zeros((PRIME_FRAMES - frames.shape[0], cfg.n_mels), np.float32)
            frames = np.concatenate([frames, pad])
        return [frames]
    if lm.primes.shape[0] and lm.primes.shape[1] >= cfg.group:
        return list(lm.primes)
    return [np.zeros((PRIME_FRAMES, cfg.n_mels), np.float32)]


def make_prime(
    lm: LoadedModel,
    *,
    seed: int,
    seed_audio: np.ndarray | None = None,
    seed_sr: int = SAMPLE_RATE,
    seed_mix: float = 0.5,
) -> np.ndarray:
    """Build the partially random seed: a catalogue snippet mixed with noise (normalized frames).

    The snippet is one second of ``seed_audio`` at a seed-chosen position, or one of the snippets
    stored in the checkpoint. ``seed_mix`` is its share: ``1`` primes with the snippet alone, ``0`` with
    noise alone.
    """
    rng = np.random.default_rng(seed)
    sources = _snippet_source(lm, seed_audio=seed_audio, seed_sr=seed_sr)
    src = sources[int(rng.integers(0, len(sources)))]
    n = min(PRIME_FRAMES, src.shape[0])
    a = int(rng.integers(0, src.shape[0] - n + 1))
    snippet = src[a : a + n]
    noise = rng.standard_normal(snippet.shape).astype(np.float32)
    return (seed_mix * snippet + (1.0 - seed_mix) * noise).astype(np.float32)


def make_guide(
    lm: LoadedModel,
    *,
    seed: int,
    n_frames: int,
    seed_audio: np.ndarray | None = None,
    seed_sr: int = SAMPLE_RATE,
    seed_mix: float = 0.5,
    piece_frames: int = 16,
) -> np.ndarray:
    """A collage of short catalogue pieces mixed with noise, to steer generation (normalized frames).

    An autoregressive frame model left alone settles into a steady sound; feeding it a little of
    this collage keeps it moving through catalogue-like material. Pieces are ``piece_frames`` long
    (0.25 s) and taken at seed-chosen places of the seed song or of the stored snippets, so the
    collage never follows one passage for long.
    """
    rng = np.random.default_rng(seed + 1)
    sources = _snippet_source(lm, seed_audio=seed_audio, seed_sr=seed_sr)
    pieces, total = [], 0
    while total < n_frames:
        src = sources[int(rng.integers(0, len(sources)))]
        k = min(piece_frames, src.shape[0])
        a = int(rng.integers(0, src.shape[0] - k + 1))
        pieces.append(src[a : a + k])
        total += k
    collage = np.concatenate(pieces)[:n_frames]
    noise = rng.standard_normal(collage.shape).astype(np.float32)
    return (seed_mix * collage + (1.0 - seed_mix) * noise).astype(np.float32)


def _stft(y: np.ndarray, win: np.ndarray, hop: int) -> np.ndarray:
    """Centered (reflect-padded) STFT ``(n_fft // 2 + 1, n_frames)`` with numpy's single-threaded FFT."""
    n_fft = win.size
    yp = np.pad(y, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop] * win
    return np.fft.rfft(frames, axis=1).T


def _istft(spec: np.ndarray, win: np.ndarray, hop: int, length: int, norm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_stft` by windowed overlap-add (``n_fft`` a multiple of ``hop``)."""
    n_fft = win.size
    frames = np.fft.irfft(spec.T, n=n_fft, axis=1).astype(np.float32) * win
    t = frames.shape[0]
    out = np.zeros((t - 1) * hop + n_fft, np.float32)
    for k in range(n_fft // hop):
        out[k * hop : k * hop + t * hop] += frames[:, k * hop : (k + 1) * hop].reshape(-1)
    out = out / norm
    return out[n_fft // 2 : n_fft // 2 + length]


def griffin_lim(
    mag: np.ndarray, *, cfg: KpopConfig, n_iter: int = GRIFFIN_LIM_ITERS, seed: int = 0
) -> np.ndarray:
    """Fast Griffin-Lim (momentum 0.99) phase reconstruction of a linear magnitude spectrogram.

    Runs on numpy's single-threaded FFT, so its speed does not collapse when the CPU is shared.

    Parameters
    ----------
    mag : numpy.ndarray
        ``(n_fft // 2 + 1, n_frames)`` magnitudes.
    cfg : KpopConfig
        STFT settings (``n_fft`` must be a multiple of ``hop``).
    n_iter : int
        Iterations.
    seed : int
        Seed of the random initial phase.

    Returns
    -------
    numpy.ndarray
        float32 1-D signal of ``(n_frames - 1) * hop`` samples.
    """
    S = np.asarray(mag, np.float32)
    n_fft, hop = cfg.n_fft, cfg.hop
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as torch.hann_window
    length = (S.shape[1] - 1) * hop
    t = S.shape[1]
    norm = np.zeros((t - 1) * hop + n_fft, np.float32)
    for k in range(n_fft // hop):
        norm[k * hop : k * hop + t * hop] += np.tile((win * win)[k * hop : (k + 1) * hop], t)
    norm = np.maximum(norm, 1e-8)
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(S.shape)).astype(np.complex64)
    rebuilt = np.zeros_like(angles)
    alpha = 0.99 / (1 + 0.99)
    for _ in range(n_iter):
        prev = rebuilt
        inv = _istft(S * angles, win, hop, length, norm)
        rebuilt = _stft(inv, win, hop)[:, :t].astype(np.complex64)
        angles = rebuilt - alpha * prev
        angles /= np.abs(angles) + 1e-16
    return _istft(S * angles, win, hop, length, norm).astype(np.float32)


def frames_to_audio(
    db: np.ndarray,
    *,
    cfg: KpopConfig,
    n_iter: int = GRIFFIN_LIM_ITERS,
    seed: int = 0,
    inverse: np.ndarray | None = None,
) -> np.ndarray:
    """Invert log-mel dB frames ``(n_frames, n_mels)`` to a 16 kHz mono signal.

    Mel magnitudes are mapped to linear frequency with the pseudo-inverse of the filter bank (negative
    values clipped), then phase is reconstructed with :func:`griffin_lim`.
    """
    if inverse is None:
        inverse = np.linalg.pinv(_mel_basis(cfg)).astype(np.float32)
    mel = (10.0 ** (db.T.astype(np.float32) / 20.0)) * _STFT_REF
    lin = np.maximum(inverse @ mel, 0.0)
    return griffin_lim(lin, cfg=cfg, n_iter=n_iter, seed=seed)


def generate_audio(
    *,
    model_or_ckpt: LoadedModel | bytes | str | Path | dict | None = None,
    seconds: float,
    seed: int,
    temperature: float = 0.8,
    noise: float = 0.0,
    seed_audio: np.ndarray | None = None,
    seed_sr: int = SAMPLE_RATE,
    seed_mix: float = 0.5,
    guide: float = DEFAULT_GUIDE,
    progress: ProgressFn | None = None,
) -> GeneratedAudio:
    """Generate new audio with a spectral LSTM from a partially random seed.

    Parameters
    ----------
    model_or_ckpt : LoadedModel, bytes, path or dict, optional
        The model (``None``: the shipped default).
    seconds : float
        Length of the result, 1 to :data:`MAX_GENERATE_SECONDS`.
    seed : int
        Seed of the prime choice, the prime noise, the sampling noise and the initial phase.
    temperature : float
        Sampling noise relative to the model's predicted spread, 0-2 (0: the mean, no sampling noise).
    noise : float
        Extra Gaussian noise on the frames fed back into the model, 0-2.
    seed_audio : numpy.ndarray, optional
        A catalogue song ``(channels, samples)`` at ``seed_sr`` to take the seed snippet from; default:
        one of the snippets stored in the checkpoint.
    seed_sr : int
        Sample rate of ``seed_audio``.
    seed_mix : float
        Share of the snippet in the prime (the rest is noise), 0-1.
    guide : float
        How much a noisy collage of catalogue pieces steers the frames fed back (:func:`make_guide`),
        0-0.8; 0 lets the model run free (it then tends to settle into a steady sound).
    progress : callable, optional
        Progress callback.

    Returns
    -------
    GeneratedAudio
        ``(y, spectrogram)``: mastered float32 ``(2, n)`` audio at 44.1 kHz and ``(n_mels, n_frames)`` dB.

    Raises
    ------
    InputError
        A parameter is out of range or the seed song is silent.
    ModelError
        The checkpoint is missing, corrupt or incompatible.

    Examples
    --------
    >>> y, spec = generate_audio(seconds=2, seed=1)  # doctest: +SKIP
    """
    from core.audio.io import resample
    from core.audio.loudness import master
    from models.kpop import generate

    secs = _check_number(seconds, "seconds", 1.0, MAX_GENERATE_SECONDS)
    temperature = _check_number(temperature, "temperature", 0.0, 2.0)
    noise = _check_number(noise, "noise", 0.0, 2.0)
    seed_mix = _check_number(seed_mix, "seed_mix", 0.0, 1.0)
    guide = _check_number(guide, "guide", 0.0, 0.8)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) < 2**63:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    lm = model_or_ckpt if isinstance(model_or_ckpt, LoadedModel) else load_model(model_or_ckpt)
    cfg = lm.cfg
    report(progress, 0.02, "preparing the seed")
    prime = make_prime(lm, seed=seed, seed_audio=seed_audio, seed_sr=seed_sr, seed_mix=seed_mix)
    n_frames = math.ceil(secs * cfg.frames_per_second) + 1
    report(progress, 0.1, "generating spectral frames")
    guide_frames = None
    if guide > 0:
        guide_frames = make_guide(
            lm,
            seed=seed,
            n_frames=n_frames + cfg.group,
            seed_audio=seed_audio,
            seed_sr=seed_sr,
            seed_mix=seed_mix,
        )
    z = generate(
        lm.model,
        prime_frames=prime,
        n_frames=n_frames,
        temperature=temperature,
        noise=noise,
        seed=seed,
        guide=guide_frames,
        guide_weight=guide,
    )
    db = lm.denormalize(z)
    report(progress, 0.4, "reconstructing the waveform (Griffin-Lim)")
    x = frames_to_audio(db, cfg=cfg, seed=seed, inverse=lm.inverse)
    x = x[: round(secs * cfg.sr)]
    fade = min(x.size // 4, int(0.02 * cfg.sr))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    report(progress, 0.85, "resampling and mastering")
    y = resample(np.stack([x, x]), sr_in=cfg.sr, sr_out=SAMPLE_RATE)
    y = np.asarray(master(y, sr=SAMPLE_RATE), dtype=np.float32)
    report(progress, 1.0, "done")
    return GeneratedAudio(y=y, spectrogram=np.ascontiguousarray(db.T))


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class CopyReport:
    """How much of a generated piece copies the training frames.

    Attributes
    ----------
    longest_run_steps : int
        Longest stretch of consecutive generated steps (``group`` frames each) that follow consecutive
        training steps, each within ``threshold``.
    longest_run_seconds : float
        The same in seconds.
    near_fraction : float
        Share of generated steps that have *some* training step within ``threshold``.
    threshold : float
        RMS distance in normalized units (band standard deviations).
    """

    longest_run_steps: int
    longest_run_seconds: float
    near_fraction: float
    threshold: float


def copy_score(
    generated: np.ndarray,
    training: Sequence[np.ndarray],
    *,
    group: int = 4,
    frames_per_second: float = 62.5,
    threshold: float = COPY_THRESHOLD,
    chunk: int = 256,
) -> CopyReport:
    """Detect verbatim copying: the longest diagonal run of near-identical steps.

    Frames are averaged ``group`` at a time (steps); a generated step *matches* a training step when
    their RMS distance is below ``threshold``. A copy of a training passage shows up as a long run of
    consecutive generated steps matching consecutive training steps of one song.

    Parameters
    ----------
    generated : numpy.ndarray
        ``(n_frames, n_mels)`` normalized frames.
    training : sequence of numpy.ndarray
        Normalized frames of the training songs.
    group : int
        Frames per step.
    frames_per_second : float
        Frame rate (for seconds).
    threshold : float
        Match distance (normalized RMS).
    chunk : int
        Training steps per distance block (memory bound).

    Returns
    -------
    CopyReport

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> song = rng.standard_normal((400, 16)).astype(np.float32)
    >>> copy_score(song[100:300], [song], group=4).longest_run_steps
    50
    """

    def pool(f: np.ndarray) -> np.ndarray:
        n = (f.shape[0] // group) * group
        return f[:n].reshape(n // group, group, f.shape[1]).mean(axis=1).astype(np.float32)

    g = pool(np.asarray(generated, np.float32))
    if g.shape[0] == 0:
        return CopyReport(0, 0.0, 0.0, threshold)
    d = g.shape[1]
    g2 = (g * g).sum(axis=1)[:, None]
    thr2 = threshold * threshold * d
    longest = 0
    near = np.zeros(g.shape[0], dtype=bool)
    for song in training:
        t = pool(np.asarray(song, np.float32))
        if t.shape[0] == 0:
            continue
        prev_tail = np.zeros(g.shape[0], dtype=np.int32)  # run length ending at (i, start-1) per row i
        for a in range(0, t.shape[0], chunk):
            tb = t[a : a + chunk]
            dist = g2 + (tb * tb).sum(axis=1)[None, :] - 2.0 * g @ tb.T
            match = dist < thr2
            near |= match.any(axis=1)
            run = np.zeros(match.shape, dtype=np.int32)
            for i in range(match.shape[0]):
                up = run[i - 1, :-1] if i > 0 else np.zeros(match.shape[1] - 1, np.int32)
                first = prev_tail[i - 1] if i > 0 else 0
                row = np.concatenate([[first], up]) + 1
                run[i] = np.where(match[i], row, 0)
            longest = max(longest, int(run.max(initial=0)))
            prev_tail = run[:, -1].copy()
    return CopyReport(
        longest_run_steps=longest,
        longest_run_seconds=longest * group / frames_per_second,
        near_fraction=float(near.mean()),
        threshold=threshold,
    )


def spectral_flatness(
    y: np.ndarray, *, sr: int = SAMPLE_RATE, fmin: float = 50.0, fmax: float = 7500.0, n_fft: int = 2048
) -> float:
    """Mean spectral flatness (geometric / arithmetic mean of the power) within ``fmin..fmax`` Hz.

    Measured inside the band the model makes (its audio has nothing above 8 kHz), so the empty top
    octave does not pull the figure to zero. White noise scores about 0.55; tonal music well below 0.2.

    Examples
    --------
    >>> noise = np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    >>> spectral_flatness(noise, sr=44100) > 0.4
    True
    """
    x = np.asarray(y, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    n = (x.size // n_fft) * n_fft
    if n == 0:
        return 0.0
    frames = x[:n].reshape(-1, n_fft) * np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    band = (freqs >= fmin) & (freqs <= fmax)
    p = np.abs(np.fft.rfft(frames, axis=1))[:, band] ** 2 + 1e-12
    loud = p.sum(axis=1) > 1e-6 * p.sum(axis=1).max()
    p = p[loud]
    flat = np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1)
    return float(flat.mean())


# --------------------------------------------------------------------------- per-user models

#: Job kind of a user's training run (see :mod:`core.jobs`); its ``result_key`` is the model file.
TRAIN_JOB_KIND = "kpop_train"


@dataclass(frozen=True)
class UserModel:
    """A model a user trained: the finished (or stopped) training job that stored a checkpoint."""

    job_id: int
    name: str
    key: str
    best_val_loss: float | None
    epochs: float | None
    created_at: Any

    @property
    def label(self) -> str:
        """Short text for a model picker."""
        loss = f", val loss {self.best_val_loss:.3f}" if self.best_val_loss is not None else ""
        return f"{self.name} ({self.created_at:%Y-%m-%d %H:%M}{loss})"


def user_models(runner: Any, *, owner_id: int) -> list[UserModel]:
    """The owner's trained models, newest first.

    A user's models are the files stored by their ``kpop_train`` jobs (:data:`TRAIN_JOB_KIND`): the
    job row holds the name, the result summary and the storage key of the checkpoint, so no extra
    table is needed and a model is listed as soon as its job has saved it.
    """
    out = []
    for job in runner.jobs(owner_id=owner_id, kind=TRAIN_JOB_KIND, statuses=("done", "cancelled")):
        if not job.result_key:
            continue
        res = job.result
        out.append(
            UserModel(
                job_id=job.id,
                name=str(job.params.get("name") or f"Model {job.id}"),
                key=job.result_key,
                best_val_loss=res.get("best_val_loss"),
                epochs=res.get("epochs"),
                created_at=job.updated_at,
            )
        )
    return out


def run_training_job(
    ctx: Any,
    *,
    files: Sequence[tuple[str, bytes]],
    storage: Any,
    epochs: int,
    max_seconds: float,
    resume: bytes | None = None,
    limits: Any = None,
    cfg: KpopConfig | None = None,
) -> dict:
    """Body of a background training job (:class:`core.jobs.JobContext` ``ctx``).

    Decodes the files (:func:`load_catalogue`), trains with ``ctx.progress`` / ``ctx.should_stop``,
    publishes the loss history after every epoch (``ctx.publish(history=...)``), stores the
    checkpoint in ``storage`` and attaches its key to the job. A stopped run saves what it learned.

    Returns
    -------
    dict
        JSON summary: ``best_val_loss``, ``epochs``, ``stopped``, ``warnings``, ``message``.
    """
    cat = load_catalogue(files, cfg=cfg, limits=limits, progress=_sub(ctx.progress, 0.0, 0.1))
    if cat.warnings:
        ctx.publish(warnings=cat.warnings)
    result = train(
        cat.tracks,
        sr=cat.sr,
        names=cat.names,
        epochs=epochs,
        cfg=cfg,
        max_seconds=max_seconds,
        resume_from=resume,
        progress=_sub(ctx.progress, 0.1, 1.0),
        should_stop=ctx.should_stop,
        on_epoch=lambda h: ctx.publish(history=h),
        meta={"name": ctx.params.get("name", "My model"), "songs_list": cat.names[:50]},
    )
    key = storage.put(result.checkpoint, suffix="pt")
    ctx.set_result_key(key)
    warnings = cat.warnings + result.warnings
    ctx.publish(history=result.history, warnings=warnings)
    best = result.best_val_loss
    epochs_done = result.history["epoch"][-1] if result.history["epoch"] else 0
    why = {"cancelled": "stopped by you", "time": "stopped at the time limit"}.get(
        result.stopped or "", "finished"
    )
    return {
        "best_val_loss": round(best, 4) if math.isfinite(best) else None,
        "epochs": epochs_done,
        "stopped": result.stopped,
        "warnings": warnings,
        "seconds": round(result.seconds, 1),
        "message": f"Training {why} after {epochs_done} epoch{'' if epochs_done == 1 else 's'}; "
        "the best model was saved.",
    }
