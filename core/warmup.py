"""Compile the app's numba code ahead of the first user who needs it.

The analysis (librosa's Viterbi decoder, onset and beat helpers) and our SoundFont synthesiser are
compiled by numba on first use and cached on disk. On a fresh install the first song a user adds beats
to therefore takes 40 s instead of 9.5 s (``python bench/add_beats.py``: a 226 s song in a fresh
process, with an empty ``NUMBA_CACHE_DIR``), about 30 s of it compiling; 9.8 s after :func:`warm_up`.
:func:`warm_up` runs the same code on a made-up 8-second song, so the compiled code is on disk for the
app; the app starts it in a background process after its first page
(:func:`components.resources.start_warmup`), and ``python -m core warmup`` does it from a deploy script.

Examples
--------
>>> from core.warmup import warm_up
>>> sorted(warm_up())
['analysis_s', 'render_s', 'tempo_bpm']
"""

from __future__ import annotations

import time

#: Length of the made-up song (long enough for a tempo, chords and a downbeat).
WARMUP_SECONDS = 8.0
_BPM = 120.0


def _song_midi() -> bytes:
    """Four bars at 120 BPM: I-V-vi-IV chords on every beat and an eighth-note line above them."""
    from core.music.midi import Note, Part, encode_midi

    notes = []
    for bar, (root, third) in enumerate(((60, 4), (67, 4), (69, 3), (65, 4))):
        for beat in range(4):
            start = float(bar * 4 + beat)
            notes += [Note(start, start + 0.9, p, 80) for p in (root - 12, root, root + third, root + 7)]
            line = root + 12 + (2 * beat) % 5
            notes += [Note(start + h, start + h + 0.45, line, 90) for h in (0.0, 0.5)]
    return encode_midi([Part("keys", notes=notes)], bpm=_BPM)


def warm_up(*, sr: int = 44100) -> dict[str, float | None]:
    """Render a made-up song with the synthesiser and analyse it, compiling (or loading) their code.

    Parameters
    ----------
    sr : int, optional
        Sample rate of the render (the app's rate by default: numba compiles per argument type, and
        the rate is one of them).

    Returns
    -------
    dict
        ``{"render_s", "analysis_s"}``: seconds each step took (about 35 s in all when nothing is
        compiled yet, 1-4 s when the compiled code is loaded from disk); ``"tempo_bpm"``: the tempo the
        analysis found (the song is at 120 BPM).
    """
    from core.audio.analysis import analyze
    from core.music.render import render_midi

    t0 = time.perf_counter()
    y = render_midi(_song_midi(), sr=int(sr), seconds=WARMUP_SECONDS)
    t1 = time.perf_counter()
    found = analyze(y, sr=int(sr))
    t2 = time.perf_counter()
    return {"render_s": t1 - t0, "analysis_s": t2 - t1, "tempo_bpm": found.tempo_bpm}


__all__ = ["WARMUP_SECONDS", "warm_up"]
