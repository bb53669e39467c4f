"""The ONE module that wraps core objects in Streamlit caches.

``st.cache_resource`` holds objects shared by every session (engine, storage, models): they
are thread-safe and never mutated. ``st.cache_data`` holds derived values. Each screen owns
a labelled section at the end of this file; edit only your own section.
"""

from __future__ import annotations

import streamlit as st

from core.config import get_settings

#: Disk budget of the cover thumbnails (about 15-30 kB each: 10,000 covers or more).
COVER_CACHE_MB = 256
#: Disk budget of the turned-down MP3s the feed plays for loud tracks (about 4.6 MB per 3 minutes).
PLAYBACK_CACHE_MB = 1024
#: Memory budgets (MiB) of the shared result caches, by the bytes their values hold (see
#: :mod:`core.memory_cache`). Results: one 10-minute add-beats result with its input (844 MB) or four
#: 3-minute ones, and generated songs. Previews: the A/B pair of WAVs of a 10-minute song (2 x 106 MB).
#: Song audio: one decoded 10-minute library song (211 MB). With the editor's 384 MB renderer this keeps
#: a busy server's caches under 2 GB.
RESULT_CACHE_MB = 1024
PREVIEW_CACHE_MB = 256
SONG_AUDIO_CACHE_MB = 256


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    from core.db.engine import make_engine, migrate

    eng = make_engine(url)
    migrate(eng)
    return eng


def engine():
    """The SQLAlchemy engine for the configured database, migrated to the latest schema."""
    return _engine(get_settings().database_url)


@st.cache_resource(show_spinner=False)
def _storage(root: str):
    from pathlib import Path

    from core.storage import LocalStorage

    return LocalStorage(Path(root))


def storage():
    """The media storage for the configured data directory."""
    return _storage(str(get_settings().media_dir))


@st.cache_resource(show_spinner=False)
def memory_cache(name: str, budget_mb: float, ttl_s: float | None = None):
    """The shared :class:`core.memory_cache.SizedLRU` called ``name`` (one per name for the server)."""
    from core.memory_cache import SizedLRU

    return SizedLRU(budget_mb=budget_mb, ttl_s=ttl_s)


def results_cache():
    """The shared cache of add-beats results and generated songs (:data:`RESULT_CACHE_MB`, an hour)."""
    return memory_cache("results", RESULT_CACHE_MB, 3600.0)


def _beats_key(digest: str, request_json: str) -> tuple:
    return ("add beats", digest, request_json)


@st.cache_resource(show_spinner=False)
def garbage_collector():
    """The server's :class:`core.memory_cache.BackgroundCollector` (app.py asks it after every run)."""
    from core.memory_cache import BackgroundCollector

    return BackgroundCollector()


@st.cache_resource(show_spinner=False)
def _warmup_process(command: tuple[str, ...]):
    """The background ``python -m core warmup`` of this server process, started once (None if it could
    not start). It runs at a lower CPU priority; its output is not kept."""
    import contextlib
    import os
    import subprocess
    import threading
    from pathlib import Path

    try:
        proc = subprocess.Popen(
            list(command), cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError:
        return None
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, proc.pid, 10)
    # reaped when it ends (no zombie for the server's lifetime)
    threading.Thread(target=proc.wait, name="beattok-warmup-wait", daemon=True).start()
    return proc


def start_warmup() -> None:
    """Compile the synthesiser's and the analysis's numba code in a background process, once per server
    (:mod:`core.warmup`; app.py calls this after each page). On a fresh install it takes about 35 s and
    saves the first user who adds beats as much; later it loads the compiled code in 1-4 s. Off with
    ``BEATTOK_WARMUP=0``."""
    import sys

    if get_settings().warmup:
        _warmup_process((sys.executable, "-m", "core", "warmup"))


@st.cache_resource(show_spinner=False)
def _cover_cache(folder: str):
    from core.disk_cache import BytesCache

    return BytesCache(folder, budget_mb=COVER_CACHE_MB, suffix=".jpg")


def cover_cache():
    """Cover thumbnails kept on disk (``cache/covers`` in the data folder), shared by all sessions.

    The first page after a restart then reads ten small JPEGs instead of decoding ten stored PNGs.
    """
    return _cover_cache(str(get_settings().data_dir / "cache" / "covers"))


@st.cache_resource(show_spinner=False)
def _playback_cache(folder: str):
    from core.disk_cache import BytesCache

    return BytesCache(folder, budget_mb=PLAYBACK_CACHE_MB, suffix=".mp3")


def playback_cache():
    """Turned-down MP3s the feed plays for loud tracks (``cache/playback`` in the data folder;
    :func:`core.library.playback_bytes`), shared by all sessions."""
    return _playback_cache(str(get_settings().data_dir / "cache" / "playback"))


@st.cache_data(show_spinner=False, max_entries=256)
def stored_cover_thumbnail(cover_key: str, size: int = 400) -> bytes:
    """A JPEG thumbnail of a stored cover (:func:`core.covers_placeholder.stored_cover_thumbnail`)."""
    from core.covers_placeholder import stored_cover_thumbnail as thumbnail

    return thumbnail(storage=storage(), cover_key=cover_key, size=size, cache=cover_cache())


@st.cache_resource(show_spinner=False)
def _cookie_key(data_dir: str) -> str:
    from core.auth import cookie_key

    return cookie_key(get_settings())


def cookie_key() -> str:
    """The auth cookie signing key (env var, Streamlit secrets, or generated once into the data dir)."""
    try:
        secret = st.secrets.get("cookie_key")  # type: ignore[union-attr]
    except Exception:  # no secrets.toml: the normal case for a local run
        secret = None
    if secret:
        return str(secret)
    return _cookie_key(str(get_settings().data_dir))


@st.cache_data(show_spinner=False, max_entries=2000)
def track_waveform(
    track_id: int, peaks_json: str, beats_json: str | None, duration_s: float, height: int
) -> str:
    """The feed-card waveform of a track as SVG (:func:`components.waveform_svg.waveform_svg`).

    Keyed by the stored JSON, so an edited track gets a new picture.
    """
    import json

    import numpy as np

    from components.waveform_svg import display_peaks, waveform_svg

    peaks = display_peaks(np.asarray(json.loads(peaks_json or "[]"), dtype=np.float32))
    beats = json.loads(beats_json) if beats_json else []
    return waveform_svg(peaks, duration_s=duration_s, beats=beats, height=height)


# --- music engine ---


@st.cache_resource(show_spinner="Loading the music models…")
def music_samplers():
    """The trained drum, bass, harmony and melody models bound to their samplers (shared, read-only)."""
    from core.music.arrange import load_samplers

    return load_samplers()


def generated_song(
    genre: str,
    mood: str,
    tempo: float | None,
    key: str | None,
    instruments: tuple[str, ...],
    seconds: float,
    seed: int,
):
    """A generated :class:`core.music.generate.Song` for these settings (deterministic, so cached by them).

    Kept in the shared results cache (bounded in bytes: a 10-minute song is about 1 GB of stems) and
    shared read-only instead of being pickled and copied on every rerun (the same settings give the
    same song for everyone). Never mutate the returned song. Shows a progress bar while it computes.
    """
    from core.music.generate import generate_song

    def make():
        bar = st.progress(0.0, text="Generating…")
        try:
            return generate_song(
                genre=genre, mood=mood, tempo=tempo, key=key, instruments=instruments, seconds=seconds,
                seed=seed, samplers=music_samplers(), progress=lambda f, msg: bar.progress(f, text=msg),
            )  # fmt: skip
        finally:
            bar.empty()

    from core.config import SAMPLE_RATE

    request = ("song", genre, mood, tempo, key, tuple(instruments), float(seconds), int(seed))
    stereo_bytes = int(float(seconds) * SAMPLE_RATE) * 2 * 4  # one float32 stereo track
    cache = results_cache()
    # the stems (the genre's four when none are picked) and the mix
    return cache.get_or_make(request, make, expected_bytes=((len(instruments) or 4) + 1) * stereo_bytes)


# --- remix ---


@st.cache_data(show_spinner=False, max_entries=6, ttl=3600)
def remix_result(
    content_sha: str,
    style_sha: str,
    seconds: float,
    strength: float,
    content_offset_s: float,
    style_offset_s: float,
    quality: str,
    seed: int,
    _result=None,
):
    """The :class:`core.remix.RemixResult` of these inputs (their SHA-256) and settings.

    A remix is deterministic for its inputs and settings, so the page computes it once (with a
    progress bar and a Cancel button, see :func:`compute_remix`) and stores it here by passing
    ``_result``; reruns then get it back by the digests and settings alone. A result that was evicted
    (at most 6 kept, for an hour) raises :class:`core.errors.InputError` asking to run it again.
    """
    if _result is None:
        from core.errors import InputError

        raise InputError("this remix is no longer in memory: press Remix again to redo it")
    return _result


def compute_remix(content: tuple[bytes, str], style: tuple[bytes, str], *, progress=None, **settings):
    """Decode ``(data, filename)`` inputs (uploads or library tracks) and run :func:`core.remix.remix`."""
    from core.audio.io import AudioLimits, decode
    from core.config import SAMPLE_RATE
    from core.remix import remix

    # both passed the upload checks or are library tracks (a saved 10-minute WAV is over 100 MB)
    y_content, y_style = (
        decode(data, filename=name, sr=SAMPLE_RATE, limits=AudioLimits.for_library(len(data)))
        for data, name in (content, style)
    )
    return remix(y_content, y_style, sr=SAMPLE_RATE, progress=progress, **settings)


# --- kpop ---


@st.cache_resource(show_spinner=False)
def _job_runner(url: str):
    from core.jobs import JobRunner

    return JobRunner(_engine(url))


def job_runner():
    """The process-wide background job runner (:class:`core.jobs.JobRunner`), created once.

    Created on first use; it marks jobs left running by a previous process as failed. Any screen that
    runs long jobs (training, rendering) can pass it to core code.
    """
    return _job_runner(get_settings().database_url)


@st.cache_resource(show_spinner="Loading the K-pop model…", max_entries=8)
def kpop_model(key: str):
    """A K-pop model (:class:`core.kpop.LoadedModel`, read-only): ``"default"`` or a storage key.

    Callers pass only keys of the user's own models (from :func:`core.kpop.user_models`).
    """
    from core import kpop

    if key == "default":
        return kpop.load_model()
    return kpop.load_model(storage().get(key))


@st.cache_data(show_spinner=False, max_entries=8)
def kpop_generate(
    model_key: str,
    seconds: float,
    seed: int,
    temperature: float,
    seed_mix: float,
    guide: float = 0.3,
    seed_data: bytes | None = None,
    seed_name: str | None = None,
):
    """Generated K-pop ``(y, spectrogram)`` for these settings (deterministic, so cached by them).

    Shows a progress bar while it computes (created and removed inside, so cache replays are clean).
    """
    from core import kpop
    from core.audio.io import AudioLimits, decode
    from core.config import SAMPLE_RATE

    seed_audio = None
    if seed_data is not None:
        seed_audio = decode(
            seed_data, filename=seed_name or "seed.wav", limits=AudioLimits.for_library(len(seed_data))
        )
    bar = st.progress(0.0, text="Generating...")
    y, spec = kpop.generate_audio(
        model_or_ckpt=kpop_model(model_key),
        seconds=seconds,
        seed=seed,
        temperature=temperature,
        seed_audio=seed_audio,
        seed_sr=SAMPLE_RATE,
        seed_mix=seed_mix,
        guide=guide,
        progress=lambda f, m: bar.progress(f, text=m),
    )
    bar.empty()
    return y, spec


# --- album ---


@st.cache_resource(show_spinner="Loading the title model…")
def album_title_model():
    """The album factory's title language model (torch; shared, read-only, eval mode)."""
    from core.album import load_title_model

    return load_title_model()


@st.cache_resource(show_spinner=False)
def album_title_assets():
    """Hashed known titles and the word list used to filter generated titles."""
    from core.album import load_title_assets

    return load_title_assets()


@st.cache_data(show_spinner=False, max_entries=64)
def album_cover(album: str, artist: str, genre: str | None, mood: str | None, style: str, seed: int):
    """One rendered album cover (:func:`core.album.make_cover`), cached by its inputs."""
    from core.album import make_cover

    return make_cover(album=album, artist=artist, genre=genre, mood=mood, style=style, seed=seed)


@st.cache_data(show_spinner=False, max_entries=256)
def cover_thumbnail(data: bytes, size: int = 400) -> bytes:
    """A JPEG thumbnail of a cover for display (:func:`core.covers_placeholder.cover_thumbnail`).

    Pages show covers at a few hundred pixels; the stored or painted PNG (up to 1.6 MB) stays for
    downloads.
    """
    from core.covers_placeholder import cover_thumbnail as thumbnail

    return thumbnail(data, size=size)


# --- editor ---


@st.cache_resource(show_spinner=False)
def editor_renderer():
    """The editor's renderer, shared by all sessions: a thread-safe stem cache bounded in bytes.

    Cached stems are read-only arrays keyed by content hashes, so sessions never see each other's edits.
    Stems the memory budget lets go of are kept as files under the data folder (``cache/editor``) and
    memory-mapped back, so editing a song longer than the budget does not decode and re-render it on
    every change.
    """
    from core.editor.render import Renderer

    return Renderer(spill_dir=get_settings().data_dir / "cache" / "editor")


def preview_wav(fingerprint: str, y, sr: int) -> bytes:
    """16-bit WAV of audio shown in a player, cached by a fingerprint of its content (for the editor,
    the project's stems and operations; for a result, the request that made it).

    Encoded without dither (a preview: 0.1 s for 3 minutes); files people download or save go through
    ``core.audio.io.encode`` with dither. The bytes are shared read-only between sessions (in a cache
    bounded in bytes: two 10-minute WAVs), and the media server stores one copy of identical bytes, so
    a page rerun re-encodes nothing.
    """
    from core.audio.io import encode

    return memory_cache("previews", PREVIEW_CACHE_MB, 1800.0).get_or_make(
        ("wav", fingerprint, int(sr)), lambda: encode(y, sr=int(sr), fmt="wav", dither=False)
    )


# --- add beats ---


@st.cache_resource(show_spinner="Loading the drum and bass models…")
def beat_samplers():
    """The drum and bass models bound to their samplers (:func:`core.beats.load_beat_samplers`), shared."""
    from core.beats import load_beat_samplers

    return load_beat_samplers()


def beats_track_audio(track_id: int, viewer_id: int):
    """``(y, sr, title, digest)`` of a library track the viewer may see, decoded at the project rate.

    Shared, not copied on each rerun (a 10-minute song is 211 MB): ``y`` is read-only.
    """
    import hashlib

    from sqlmodel import Session

    from core.audio.io import AudioLimits, decode
    from core.config import SAMPLE_RATE
    from core.library import audio_bytes, get_for_viewer

    def make():
        with Session(engine()) as s:
            track = get_for_viewer(s, track_id=int(track_id), viewer_id=int(viewer_id))
            data, filename, _ = audio_bytes(s, storage(), track=track)
            title = track.title
        y = decode(data, filename=filename, sr=SAMPLE_RATE, limits=AudioLimits.for_library(len(data)))
        y.flags.writeable = False
        return y, SAMPLE_RATE, title, hashlib.sha256(data).hexdigest()

    cache = memory_cache("song audio", SONG_AUDIO_CACHE_MB, 900.0)
    return cache.get_or_make(("library track", int(track_id), int(viewer_id)), make)


@st.cache_data(show_spinner="Analysing the song (tempo, beats, key, chords)…", max_entries=4, ttl=3600)
def beats_analysis(digest: str, _y, sr: int):
    """The full analysis (:func:`core.audio.analysis.analyze`) of the song whose bytes hash to ``digest``."""
    from core.audio.analysis import analyze

    return analyze(_y, sr=sr)


def release_beats_result(digest: str, request_json: str, *, min_mb: float = 256.0) -> bool:
    """Let go of a cached add-beats result of at least ``min_mb`` (it was opened in the editor, which
    now holds the same audio: a 10-minute result is 844 MB); coming back to it recomputes it."""
    cache = results_cache()
    key = _beats_key(digest, request_json)
    size = cache.size(key)
    return size is not None and size >= min_mb * 1024 * 1024 and cache.discard(key)


def beats_result(digest: str, request_json: str, y, analysis):
    """:func:`core.beats.add_beats` for a song digest and a JSON request (deterministic, so cached by them).

    Kept in the shared results cache (bounded in bytes) and shared read-only between sessions (never
    mutate its arrays). Shows a progress bar while computing.
    """
    import json

    from core.beats import add_beats

    def make():
        req = json.loads(request_json)
        bar = st.progress(0.0, text="Adding beats…")
        try:
            return add_beats(
                y, sr=int(req.pop("sr")), analysis=analysis, samplers=beat_samplers(),
                progress=lambda f, msg: bar.progress(f, text=msg), **req,
            )  # fmt: skip
        finally:
            bar.empty()

    key = _beats_key(digest, request_json)
    # the mix, drums and bass, and the input the original stem views
    return results_cache().get_or_make(key, make, expected_bytes=4 * int(y.nbytes))


@st.cache_data(show_spinner=False, max_entries=64)
def editor_lane(stem_key: str, regions: tuple, _y, sr: int):
    """The waveform lane figure of a processed stem, cached by its content key and the loop regions."""
    from components.editor_widgets import lane_figure

    return lane_figure(_y, sr=sr, regions=regions)
