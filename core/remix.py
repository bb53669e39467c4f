"""Remix: one song in the style of another, by neural style transfer on spectrograms.

The method follows Ulyanov & Lebedev's audio style transfer ("Audio texture synthesis and style
transfer", 2016): the log-magnitude STFT (``log1p |S|``) of a mono mix is treated as a 1-D signal
over time whose channels are the frequency bins; one wide 1-D convolution with *random*, fixed
weights (seeded) and a ReLU gives the features. The style of a clip is the Gram matrix of those
features (which filters fire together, averaged over time); the content is the feature map itself.
Starting from the content's spectrogram, we minimize

``style_loss + content_weight(strength) * content_loss``,
``content_weight(s) = CONTENT_BALANCE * ((1 - s) / s) ** 2``

over the log-magnitude spectrogram with L-BFGS, where both losses are relative squared errors
(``||G - G_style||^2 / ||G_style||^2`` and ``||F - F_content||^2 / ||F_content||^2``), so the
figures in :class:`RemixResult` are comparable between clips and presets.

Differences from the published reference configuration (4096 filters, L-BFGS 300 iterations from
noise, Griffin-Lim 500 iterations from random phase), all measured in ``bench/remix.py``:

- the optimization starts from the content spectrogram, not from noise, so far fewer iterations
  reach a result that keeps the content (the reference has to rebuild the content from scratch);
- fewer filters (512/1024/2048 for fast/balanced/high) and a time stride of 2 in the convolution
  (cost is linear in both). Measured on 10 s of the bench clips (a rendered piano piece in the style of
  a drum-and-synth track), as the style distance under an independent 4096-filter evaluation network
  relative to the content's (1 = unchanged) and the chroma correlation with the content:
  512 filters/50 evaluations 0.69 / 0.990; 768/50 0.60 / 0.982; 1024/50 0.51 / 0.968;
  1024/35 0.51 / 0.968 (the balanced preset uses 30); a stride of 4 with 1024 filters did worse than 512 at
  stride 2 for the same cost. Small networks are "fooled" cheaply: their own Gram loss falls 5-10x while
  the independent measure barely moves, so width matters more than iterations;
- the network stays *random*: a network of the same shape trained by us (encoder of a spectrogram
  autoencoder on rendered POP909 songs and Groove drums, ``bench/remix_trained.py``) moved the result
  far less towards the style on the same 10 s (evaluation-network ratio 0.87 vs 0.51; network-free
  log-mel Gram ratio 0.99 vs 0.63) at the same cost, matching the paper's finding that random
  features work well for audio textures;
- phase reconstruction is fast Griffin-Lim (Perraudin et al. 2013, momentum 0.99) initialized
  with the *content's* phase, which already fits the content's onsets and pitches;
- long inputs are optimized in chunks (default 10 s) that overlap by one second and are
  crossfaded in the magnitude domain, then the whole spectrogram is phase-reconstructed in one pass
  (no phase seams);
- inputs are level-matched before analysis and the result is loudness-normalized to -14 LUFS and
  true-peak limited to -1 dBTP (:func:`core.audio.loudness.master`), so a remix never blasts.

The work is done at :data:`WORK_SR` (22050 Hz, like the paper); the result is resampled to the
project rate and duplicated to stereo, so it is band-limited to about 11 kHz.

Examples
--------
>>> import numpy as np
>>> from core.remix import remix
>>> t = np.arange(3 * 44100) / 44100
>>> a = np.tile(0.3 * np.sin(2 * np.pi * 220 * t), (2, 1)).astype(np.float32)
>>> b = np.tile(0.3 * np.sign(np.sin(2 * np.pi * 110 * t)), (2, 1)).astype(np.float32)
>>> r = remix(a, b, sr=44100, quality="fast", threads=1)  # doctest: +SKIP
>>> r.audio.shape  # doctest: +SKIP
(2, 132300)
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from core.audio.checks import check_sample_rate, check_signal
from core.config import SAMPLE_RATE
from core.errors import InputError
from core.progress import ProgressFn, report

#: Rate of the spectrogram work (as in the paper); the output is resampled to the project rate.
WORK_SR = 22050
#: STFT size and hop at :data:`WORK_SR` (93 ms window, 23 ms hop, 1025 bins).
N_FFT = 2048
HOP = 512
#: Default and largest length of the remixed excerpt, in seconds.
DEFAULT_SECONDS = 30.0
MAX_SECONDS = 120.0
#: Shortest usable excerpt of either input, in seconds.
MIN_SECONDS = 1.0
#: Accepted input sample rates, in Hz (inputs are resampled to :data:`WORK_SR`).
MIN_SR, MAX_SR = 1000, 384000
#: Inputs quieter than this RMS (about -80 dBFS) are treated as silent.
SILENCE_RMS = 1e-4
#: Level both excerpts are brought to before analysis (style is timbre/texture, not loudness).
ANALYSIS_RMS = 0.1
#: Content weight at ``strength=0.5`` (relative losses). Measured on the bench clips: with 0.25 the
#: optimum at 0.5 barely moved an independent style measure (-23 %); 0.03 gives a clearly audible change
#: while the chroma (melody/harmony) stays > 0.95 correlated with the content.
CONTENT_BALANCE = 0.03


def content_weight(strength: float) -> float:
    """Weight of the content loss for a style strength in (0, 1]: ``CONTENT_BALANCE * ((1 - s) / s) ** 2``.

    0.25 -> 9 x CONTENT_BALANCE (mild), 0.5 -> CONTENT_BALANCE, 0.75 -> CONTENT_BALANCE / 9, 1 -> 0
    (the content then survives only through the initialization from the content spectrogram).
    """
    return CONTENT_BALANCE * ((1.0 - strength) / strength) ** 2


#: Content weight of the paper's absolute loss (Ulyanov & Lebedev's code: ALPHA = 1e-2).
PAPER_ALPHA = 1e-2
#: Overlap crossfaded between neighbouring optimization chunks, in seconds.
CHUNK_OVERLAP_SECONDS = 1.0
#: A relative style loss below this means content and style already match: nothing to optimize
#: (two different pieces measure 0.1-1; the same piece from two encodings well under 1e-3).
MATCHED_STYLE_LOSS = 1e-3
#: Environment variable with the torch thread count used when ``threads`` is not given.
THREADS_ENV = "BEATTOK_TORCH_THREADS"
#: Size of the spectrogram previews stored in :class:`RemixResult` (frequency rows x time columns).
PREVIEW_BINS = 256
PREVIEW_FRAMES = 600


@dataclass(frozen=True)
class RemixConfig:
    """Everything that sets the cost/quality trade of a remix.

    Attributes
    ----------
    n_filters : int
        Width of the random convolution (feature channels).
    kernel : int
        Kernel length in STFT frames (11 frames = 0.25 s at 22050 Hz, hop 512).
    stride : int
        Time stride of the convolution; 2 halves the cost and still lets every frame reach the
        features (the kernel is much longer than the stride).
    lbfgs_iters : int
        L-BFGS iterations per chunk (each may evaluate the loss more than once).
    max_evals : int
        Cap on loss evaluations per chunk (the cost driver).
    griffin_lim_iters : int
        Phase-reconstruction iterations over the whole result.
    chunk_seconds : float
        Length of the optimization chunks (neighbours overlap by one second and are crossfaded).
    init : str
        ``"content"`` (start from the content spectrogram) or ``"noise"`` (the paper).
    phase_init : str
        ``"content"`` (content phase) or ``"random"`` (the paper).
    momentum : float
        Fast Griffin-Lim momentum (0 gives plain Griffin-Lim).
    paper_loss : bool
        Use the paper's absolute loss ``sum((G - G_s)^2) + 1e-2 * sum((F - F_c)^2)`` (``strength`` is then
        ignored) instead of the relative, strength-weighted one.
    """

    n_filters: int
    kernel: int = 11
    stride: int = 1
    lbfgs_iters: int = 60
    max_evals: int = 60
    griffin_lim_iters: int = 32
    chunk_seconds: float = 10.0
    init: str = "content"
    phase_init: str = "content"
    momentum: float = 0.99
    paper_loss: bool = False

    def __post_init__(self) -> None:
        checks = [
            ("n_filters", self.n_filters, 1, 8192),
            ("kernel", self.kernel, 1, 63),
            ("stride", self.stride, 1, 8),
            ("lbfgs_iters", self.lbfgs_iters, 1, 10000),
            ("max_evals", self.max_evals, 1, 10000),
            ("griffin_lim_iters", self.griffin_lim_iters, 0, 10000),
        ]
        for name, value, lo, hi in checks:
            if not isinstance(value, int) or not lo <= value <= hi:
                raise InputError(f"{name} must be an integer from {lo} to {hi}; got {value!r}")
        if not 2.0 <= self.chunk_seconds <= MAX_SECONDS:
            raise InputError(f"chunk_seconds must be from 2 to {MAX_SECONDS:.0f}; got {self.chunk_seconds}")
        if self.init not in ("content", "noise") or self.phase_init not in ("content", "random"):
            raise InputError(
                f"init must be 'content' or 'noise' and phase_init 'content' or 'random'; "
                f"got {self.init!r}, {self.phase_init!r}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise InputError(f"momentum must be in [0, 1); got {self.momentum}")


#: Quality presets; "balanced" is sized for 30 s in <= 30 s on 2 cores (see ``bench/remix.py``); "fast" costs
#: about a third of it, "high" (twice the filters, more iterations) about three times as much.
PRESETS: dict[str, RemixConfig] = {
    "fast": RemixConfig(n_filters=512, stride=2, lbfgs_iters=25, max_evals=25, griffin_lim_iters=16),
    "balanced": RemixConfig(n_filters=1024, stride=2, lbfgs_iters=30, max_evals=30, griffin_lim_iters=32),
    "high": RemixConfig(n_filters=2048, stride=2, lbfgs_iters=50, max_evals=50, griffin_lim_iters=64),
}

#: The published configuration (Ulyanov & Lebedev): used by the bench as the point of comparison.
REFERENCE_CONFIG = RemixConfig(
    n_filters=4096,
    lbfgs_iters=300,
    max_evals=375,
    griffin_lim_iters=500,
    init="noise",
    phase_init="random",
    momentum=0.0,
    paper_loss=True,
)


@dataclass(frozen=True)
class RemixResult:
    """The outcome of :func:`remix`.

    Attributes
    ----------
    audio : np.ndarray
        float32 ``(2, n)`` at :attr:`sr`, loudness-normalized (-14 LUFS) and true-peak limited (-1 dBTP).
    sr : int
        Sample rate of :attr:`audio` (the project rate).
    seconds : float
        Length of the result in seconds.
    style_loss_before, style_loss_after : float
        Relative Gram-matrix distance to the style, ``||G - G_s||^2 / ||G_s||^2``, of the content
        (before) and of the result (after); frame-weighted mean over chunks.
    content_loss_after : float
        Relative feature distance of the result to the content, ``||F - F_c||^2 / ||F_c||^2``.
    elapsed_s : float
        Wall time of the whole job.
    content_spec, style_spec, result_spec : np.ndarray
        ``log1p`` magnitude spectrogram previews (frequency rows x time columns, float32) of the content
        excerpt, the style excerpt and the result, at most ``PREVIEW_BINS x PREVIEW_FRAMES``, all with
        the same time scale (:attr:`spec_frame_s`).
    spec_hz : np.ndarray
        Centre frequency of each preview row (Hz).
    spec_frame_s : float
        Duration of one preview column (seconds).
    notes : tuple of str
        Human-readable notes about what was done to the inputs (trimmed, resampled, ...).
    evaluations : int
        Loss evaluations spent in the optimization (0 when there was nothing to optimize).
    """

    audio: np.ndarray
    sr: int
    seconds: float
    style_loss_before: float
    style_loss_after: float
    content_loss_after: float
    elapsed_s: float
    content_spec: np.ndarray
    style_spec: np.ndarray
    result_spec: np.ndarray
    spec_hz: np.ndarray
    spec_frame_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    evaluations: int = 0


# ----------------------------------------------------------------------------------------------
# input preparation (pure numpy)


def _resample(y: np.ndarray, *, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return y.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(int(sr_in), int(sr_out))
    return resample_poly(y, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


def _excerpt(
    y: np.ndarray, *, sr: int, offset_s: float, seconds: float | None, name: str, notes: list[str]
) -> np.ndarray:
    """Mono excerpt of ``y`` at :data:`WORK_SR`, validated; appends notes about trimming."""
    duration = y.shape[-1] / sr
    if not math.isfinite(offset_s) or offset_s < 0:
        raise InputError(f"{name} offset must be >= 0 s; got {offset_s}")
    if offset_s > max(0.0, duration - MIN_SECONDS):
        raise InputError(
            f"{name} offset {offset_s:.1f} s leaves less than {MIN_SECONDS:.0f} s of audio; "
            f"the {name} is {duration:.1f} s long, so the offset must be between 0 and "
            f"{max(0.0, duration - MIN_SECONDS):.1f} s"
        )
    available = duration - offset_s
    length = available if seconds is None else min(seconds, available)
    if available < MIN_SECONDS or length < MIN_SECONDS:
        raise InputError(
            f"{name} is too short: {available:.2f} s after the offset; at least {MIN_SECONDS:.0f} s is needed"
        )
    if seconds is not None and available > seconds + 1e-6:
        notes.append(
            f"{name} is {duration:.1f} s long; used {length:.1f} s from {offset_s:.1f} s "
            f"(choose the part with the offset; at most {MAX_SECONDS:.0f} s per remix)"
        )
    start = round(offset_s * sr)
    stop = start + round(length * sr)
    mono = y[:, start:stop].astype(np.float64).mean(axis=0)
    rms = float(np.sqrt(np.mean(mono**2))) if mono.size else 0.0
    if rms < SILENCE_RMS:
        raise InputError(
            f"{name} is silent in the chosen part (RMS {20 * math.log10(max(rms, 1e-12)):.0f} dBFS; "
            f"needs at least {20 * math.log10(SILENCE_RMS):.0f} dBFS): choose another part or file"
        )
    mono = _resample(mono, sr_in=sr, sr_out=WORK_SR)
    return (mono * (ANALYSIS_RMS / rms)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# torch parts


def _stft(x, torch):
    window = torch.hann_window(N_FFT, dtype=torch.float32)
    return torch.stft(x, N_FFT, hop_length=HOP, window=window, center=True, return_complex=True)


def _istft(spec, length: int, torch):
    window = torch.hann_window(N_FFT, dtype=torch.float32)
    return torch.istft(spec, N_FFT, hop_length=HOP, window=window, center=True, length=length)


def make_network(n_bins: int, *, n_filters: int, kernel: int, seed: int):
    """The random feature network: one conv over time with frequency bins as channels.

    Weights are drawn with the paper's scale ``sqrt(2) * sqrt(2 / ((bins + filters) * kernel))``
    from ``torch.Generator().manual_seed(seed)``; they are never trained.

    Returns
    -------
    torch.Tensor
        Weights ``(n_filters, n_bins, kernel)``.
    """
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    std = math.sqrt(2.0) * math.sqrt(2.0 / ((n_bins + n_filters) * kernel))
    return torch.randn(n_filters, n_bins, kernel, generator=gen, dtype=torch.float32) * std


def features(logmag, weights, *, stride: int = 1):
    """ReLU features ``(filters, frames / stride)`` of a log-magnitude spectrogram ``(bins, frames)``."""
    import torch

    pad = weights.shape[-1] // 2
    return torch.relu(torch.nn.functional.conv1d(logmag[None], weights, padding=pad, stride=stride))[0]


def gram(feats):
    """Gram matrix of features ``(filters, frames)``, averaged over frames."""
    return feats @ feats.T / feats.shape[1]


def _chunks(n_frames: int, *, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Split ``n_frames`` into about ``chunk``-frame spans of equal length overlapping by ``overlap``."""
    count = max(1, round(n_frames / chunk))
    if count == 1:
        return [(0, n_frames)]
    length = math.ceil((n_frames + (count - 1) * overlap) / count)
    step = length - overlap
    return [
        (min(i * step, n_frames - length), min(i * step, n_frames - length) + length) for i in range(count)
    ]


def _crossfade_ramp(spans: list[tuple[int, int]], i: int, torch):
    """Per-frame weights of chunk ``i``: linear fades where it overlaps its neighbours."""
    a, b = spans[i]
    ramp = torch.ones(b - a)
    if i > 0:
        n = min(b - a, max(0, spans[i - 1][1] - a))
        if n:
            ramp[:n] = torch.linspace(0, 1, n + 2)[1:-1]
    if i + 1 < len(spans):
        n = min(b - a, max(0, b - spans[i + 1][0]))
        if n:
            ramp[b - a - n :] = torch.minimum(ramp[b - a - n :], torch.linspace(1, 0, n + 2)[1:-1])
    return ramp


def _optimize_chunk(target, style_gram, weights, *, cfg, strength, seed, on_eval, torch):
    """Optimize one chunk; returns (optimized logmag, style before, style after, content after, evals)."""
    target = target.contiguous()
    content_feats = features(target, weights, stride=cfg.stride).detach()
    content_norm = float((content_feats**2).sum()) or 1.0
    style_norm = float((style_gram**2).sum()) or 1.0

    def losses(x):
        f = features(x, weights, stride=cfg.stride)
        ls = ((gram(f) - style_gram) ** 2).sum() / style_norm
        lc = ((f - content_feats) ** 2).sum() / content_norm
        return ls, lc

    with torch.no_grad():
        ls0, _ = losses(target)
    style_before = float(ls0)
    if style_before <= MATCHED_STYLE_LOSS or strength <= 0.0:
        return target.clone(), style_before, style_before, 0.0, 0

    if cfg.init == "noise":
        gen = torch.Generator().manual_seed(int(seed) + 1)
        x0 = torch.randn(target.shape, generator=gen) * 1e-3
    else:
        x0 = target.clone()
    c_weight = content_weight(strength)
    x = x0.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=cfg.lbfgs_iters,
        max_eval=cfg.max_evals,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )
    evals = 0

    def closure():
        nonlocal evals
        opt.zero_grad()
        ls, lc = losses(x)
        if cfg.paper_loss:
            loss = ls * style_norm + PAPER_ALPHA * lc * content_norm
        else:
            loss = ls + c_weight * lc
        loss.backward()
        evals += 1
        on_eval(evals)
        return loss

    opt.step(closure)
    with torch.no_grad():
        result = x.detach().clamp_min(0.0)
        if not bool(torch.isfinite(result).all()):  # a diverged line search: keep the content, never garbage
            result = target.clone()
        ls1, lc1 = losses(result)
    return result, style_before, float(ls1), float(lc1), evals


def griffin_lim(mag, *, n_iter: int, length: int, init_phase=None, momentum: float = 0.99, seed: int = 0):
    """(Fast) Griffin-Lim: a signal whose STFT magnitude approximates ``mag``.

    Parameters
    ----------
    mag : torch.Tensor
        Target magnitude ``(bins, frames)`` for ``N_FFT``/``HOP``.
    n_iter : int
        Iterations (0 returns the inverse STFT of ``mag`` with the initial phase).
    length : int
        Output length in samples.
    init_phase : torch.Tensor, optional
        Unit-modulus complex tensor ``(bins, frames)``; random phase (seeded) when ``None``.
    momentum : float
        Fast Griffin-Lim momentum (Perraudin et al.); 0 is the classic algorithm.
    seed : int
        Seed of the random initial phase.

    Returns
    -------
    torch.Tensor
        float32 signal of ``length`` samples.
    """
    import torch

    if init_phase is None:
        gen = torch.Generator().manual_seed(int(seed))
        angles = torch.rand(mag.shape, generator=gen) * (2 * math.pi)
        init_phase = torch.polar(torch.ones_like(mag), angles)
    spec = mag * init_phase
    prev = None
    for _ in range(int(n_iter)):
        y = _istft(spec, length, torch)
        rebuilt = _stft(y, torch)
        accel = rebuilt if prev is None or not momentum else rebuilt + momentum * (rebuilt - prev)
        prev = rebuilt
        spec = mag * (accel / accel.abs().clamp_min(1e-10))
    return _istft(spec, length, torch)


def _preview(logmag: np.ndarray, *, time_factor: int | None = None) -> np.ndarray:
    """Mean-pool ``(bins, frames)`` to at most PREVIEW_BINS rows and ``time_factor`` frames a column."""
    bins, frames = logmag.shape
    fb = max(1, math.ceil(bins / PREVIEW_BINS))
    ft = time_factor or max(1, math.ceil(frames / PREVIEW_FRAMES))
    pb, pt = (-bins) % fb, (-frames) % ft
    padded = np.pad(logmag, ((0, pb), (0, pt)), mode="edge")
    return (
        padded.reshape(padded.shape[0] // fb, fb, padded.shape[1] // ft, ft)
        .mean(axis=(1, 3))
        .astype(np.float32)
    )


def resolve_threads(threads: int | None) -> int:
    """Torch threads for a remix: ``threads``, else ``$BEATTOK_TORCH_THREADS``, else 1.

    Measured on the 2-core machine while other jobs ran (load ~3): the balanced 30 s remix took 29.6 s
    with 1 thread and 81.7 s with 2 (OpenMP threads stall when one is descheduled). A server shares its
    cores between users, so 1 is the default; set ``BEATTOK_TORCH_THREADS=2`` on a dedicated machine.
    """
    if threads is None:
        raw = os.environ.get(THREADS_ENV, "1")
        try:
            threads = int(raw)
        except ValueError:
            raise InputError(f"{THREADS_ENV} must be an integer from 1 to 64; got {raw!r}") from None
    if not 1 <= int(threads) <= 64:
        raise InputError(f"threads must be from 1 to 64; got {threads}")
    return int(threads)


# ----------------------------------------------------------------------------------------------
# public API


def remix(
    content: np.ndarray,
    style: np.ndarray,
    *,
    sr: int,
    style_sr: int | None = None,
    seconds: float | None = None,
    strength: float = 0.5,
    content_offset_s: float = 0.0,
    style_offset_s: float = 0.0,
    quality: str = "balanced",
    seed: int = 0,
    progress: ProgressFn | None = None,
    threads: int | None = None,
    config: RemixConfig | None = None,
    network=None,
    out_sr: int = SAMPLE_RATE,
) -> RemixResult:
    """Render ``content`` in the style of ``style``.

    Parameters
    ----------
    content, style : np.ndarray
        float audio shaped ``(channels, samples)`` (or 1-D mono); any channel counts (mixed down).
    sr : int
        Sample rate of ``content`` (and of ``style`` unless ``style_sr`` is given).
    style_sr : int, optional
        Sample rate of ``style`` when it differs from ``sr`` (it is resampled).
    seconds : float, optional
        Length of the result: the content excerpt from ``content_offset_s``; default 30 s (or the whole
        content when shorter), at most 120 s. Longer inputs are trimmed and a note says so.
        The style excerpt is at most as long.
    strength : float
        0..1: the style/content trade. 0 returns the content, 1 ignores the content loss (the content
        survives only through the initialization).
    content_offset_s, style_offset_s : float
        Where each excerpt starts, in seconds.
    quality : {"fast", "balanced", "high"}
        Cost preset (see :data:`PRESETS`); ignored when ``config`` is given.
    seed : int
        Seed of the random network; the same seed and inputs give the same output.
    progress : callable, optional
        ``progress(fraction, message)``; it may raise :class:`core.errors.CancelledError` to cancel,
        in which case nothing is returned and no state is left changed.
    threads : int, optional
        torch CPU threads for the job (restored afterwards); default ``$BEATTOK_TORCH_THREADS`` or 1.
    config : RemixConfig, optional
        Explicit configuration (e.g. :data:`REFERENCE_CONFIG` in the bench).
    network : torch.Tensor, optional
        Feature weights ``(filters, 1025, kernel)`` to use instead of the seeded random network
        (e.g. a trained one, compared in the bench).
    out_sr : int
        Output sample rate (the project rate), 8000-192000 Hz.

    Returns
    -------
    RemixResult

    Raises
    ------
    core.errors.InputError
        Bad parameters; silent, too short or malformed audio (the message names the value and range).
    core.errors.CancelledError
        Raised by ``progress``.
    """
    t0 = time.perf_counter()
    sr = check_sample_rate(sr, min_sr=MIN_SR, max_sr=MAX_SR)
    if style_sr is None:
        style_sr = sr
    style_sr = check_sample_rate(style_sr, min_sr=MIN_SR, max_sr=MAX_SR, what="style sample rate")
    out_sr = check_sample_rate(out_sr, what="output sample rate")  # what is mastered and stored
    if not isinstance(strength, int | float) or not 0.0 <= float(strength) <= 1.0:
        raise InputError(f"strength must be between 0 and 1; got {strength!r}")
    strength = float(strength)
    if seconds is not None and (not math.isfinite(seconds) or not MIN_SECONDS <= seconds <= MAX_SECONDS):
        raise InputError(f"seconds must be between {MIN_SECONDS:.0f} and {MAX_SECONDS:.0f}; got {seconds}")
    if config is None:
        if quality not in PRESETS:
            raise InputError(f"quality must be one of {', '.join(PRESETS)}; got {quality!r}")
        config = PRESETS[quality]
    if not isinstance(seed, int | np.integer) or not 0 <= int(seed) < 2**63:
        raise InputError(f"seed must be an integer from 0 to 2**63 - 1; got {seed!r}")
    n_threads = resolve_threads(threads)
    notes: list[str] = []

    content = check_signal(np.asarray(content), sr=sr, min_sr=MIN_SR, max_sr=MAX_SR, what="content audio")
    style = check_signal(np.asarray(style), sr=style_sr, min_sr=MIN_SR, max_sr=MAX_SR, what="style audio")
    if style_sr != sr:
        notes.append(f"style resampled from {style_sr} Hz to {sr} Hz")
    want = DEFAULT_SECONDS if seconds is None else float(seconds)
    c = _excerpt(content, sr=sr, offset_s=content_offset_s, seconds=want, name="content", notes=notes)
    s = _excerpt(style, sr=style_sr, offset_s=style_offset_s, seconds=want, name="style", notes=notes)
    out_seconds = c.size / WORK_SR
    out_len = round(out_seconds * out_sr)
    report(progress, 0.0, "analysing")

    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with torch.no_grad():
            c_spec = _stft(torch.from_numpy(c), torch)
            s_spec = _stft(torch.from_numpy(s), torch)
            c_log = torch.log1p(c_spec.abs())
            s_log = torch.log1p(s_spec.abs())
        n_bins, n_frames = c_log.shape
        if network is None:
            weights = make_network(n_bins, n_filters=config.n_filters, kernel=config.kernel, seed=int(seed))
        elif tuple(network.shape[1:2]) != (n_bins,) or network.ndim != 3:
            raise InputError(
                f"network weights must be shaped (filters, {n_bins}, kernel); got {tuple(network.shape)}"
            )
        else:
            weights = network.detach().to(torch.float32)
        with torch.no_grad():
            style_gram = gram(features(s_log, weights, stride=config.stride))
            whole = gram(features(c_log, weights, stride=config.stride))
            whole_loss = float(((whole - style_gram) ** 2).sum() / (style_gram**2).sum().clamp_min(1e-30))
        # the same song twice (or two encodings of it): nothing to transfer, answer with the content
        matched = whole_loss <= MATCHED_STYLE_LOSS

        frame_rate = WORK_SR / HOP
        spans = _chunks(
            n_frames,
            chunk=max(1, round(config.chunk_seconds * frame_rate)),
            overlap=round(CHUNK_OVERLAP_SECONDS * frame_rate),
        )
        if matched or strength <= 0.0:
            spans = []
        total_evals = max(1, config.max_evals * len(spans))
        opt_share = 0.85
        out_log = torch.zeros_like(c_log)
        weight_sum = torch.zeros(n_frames)
        sums = np.zeros(3)
        evals_done = 0
        for i, (a, b) in enumerate(spans):
            done_before = evals_done

            def on_eval(k, done_before=done_before, i=i):
                report(
                    progress,
                    opt_share * min(1.0, (done_before + k) / total_evals),
                    f"styling part {i + 1}/{len(spans)} (step {k})",
                )

            res, sb, sa, ca, ev = _optimize_chunk(
                c_log[:, a:b], style_gram, weights, cfg=config, strength=strength, seed=int(seed) + i,
                on_eval=on_eval, torch=torch,
            )  # fmt: skip
            evals_done += ev
            frames = b - a
            sums += np.array([sb, sa, ca]) * frames
            ramp = _crossfade_ramp(spans, i, torch)
            out_log[:, a:b] += res * ramp
            weight_sum[a:b] += ramp
            report(
                progress, opt_share * min(1.0, evals_done / total_evals), f"styled part {i + 1}/{len(spans)}"
            )
        if spans:
            out_log = out_log / weight_sum.clamp_min(1e-6)
            frames_total = sum(b - a for a, b in spans)
            style_before, style_after, content_after = (sums / frames_total).tolist()
        else:
            out_log = c_log.clone()
            style_before, style_after, content_after = whole_loss, whole_loss, 0.0

        report(progress, opt_share, "rebuilding the waveform")
        if evals_done == 0:
            # nothing was optimized (strength 0 or the style already matches): the content is the answer
            y_work = None
        else:
            mag = torch.expm1(out_log).clamp_min(0.0)
            init_phase = None
            if config.phase_init == "content":
                init_phase = c_spec / c_spec.abs().clamp_min(1e-10)
            y_t = griffin_lim(
                mag,
                n_iter=config.griffin_lim_iters,
                length=c.size,
                init_phase=init_phase,
                momentum=config.momentum,
                seed=int(seed),
            )
            y_work = np.nan_to_num(y_t.numpy().astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        result_log = out_log.numpy()
        c_log_np = c_log.numpy()
        s_log_np = s_log.numpy()
    finally:
        torch.set_num_threads(old_threads)

    if matched and strength > 0.0:
        notes.append("the content already has the style (style loss ~0): returned the content unchanged")
    if y_work is None:
        start = round(content_offset_s * sr)
        raw = content[:, start : start + round(out_seconds * sr)].astype(np.float32)
        mono = raw.mean(axis=0)
        y_out = _resample(mono, sr_in=int(sr), sr_out=out_sr)
    else:
        y_out = _resample(y_work, sr_in=WORK_SR, sr_out=out_sr)
    y_out = _fit_length(y_out, out_len)
    stereo = np.stack([y_out, y_out]).astype(np.float32)

    report(progress, 0.95, "normalizing loudness")
    from core.audio.loudness import master

    audio = master(stereo, sr=out_sr).astype(np.float32)
    report(progress, 1.0, "done")
    # one time scale for the three previews (the style excerpt may be longer than the content)
    pool = max(1, math.ceil(max(c_log_np.shape[1], s_log_np.shape[1]) / PREVIEW_FRAMES))
    return RemixResult(
        audio=audio,
        sr=int(out_sr),
        seconds=out_len / out_sr,
        style_loss_before=float(style_before),
        style_loss_after=float(style_after),
        content_loss_after=float(content_after),
        elapsed_s=time.perf_counter() - t0,
        content_spec=_preview(c_log_np, time_factor=pool),
        style_spec=_preview(s_log_np, time_factor=pool),
        result_spec=_preview(result_log, time_factor=pool),
        spec_hz=_preview(np.fft.rfftfreq(N_FFT, 1.0 / WORK_SR)[:, None].astype(np.float32))[:, 0],
        spec_frame_s=HOP / WORK_SR * pool,
        notes=tuple(notes),
        evaluations=evals_done,
    )


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.size >= n:
        return y[:n]
    return np.pad(y, (0, n - y.size))
