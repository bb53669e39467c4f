"""The music engine: theory, song plans, instruments, MIDI, soundfont rendering, arrangement, generation.

Public API (submodules import their heavy dependencies only when called):

- :func:`core.music.generate.generate_song` ``(*, genre, mood, tempo=None, key=None, instruments=None,
  seconds=30, seed=0, progress=None, samplers=None, soundfont=None, workers=None) -> Song`` with
  ``stems``, ``mix``, ``sr``, ``midi``, ``midi_all``, ``notes``, ``tempo_bpm``, ``key``, ``sections``,
  ``chords``, ``pitched_notes``, ``chromatic_notes``, ``timings``; ``sum(stems)`` is the mix before the
  limiter and ``mix = core.audio.loudness.limit(sum(stems))`` at -14 LUFS / -1 dBTP.
- :mod:`core.music.theory`: ``parse_key``, ``Key``, ``SCALES``, ``parse_chord``, ``chord_pitch_classes``,
  ``diatonic_chords``, ``fit_chord_to_key``, ``voice_chord``, ``in_key``, ``nearest_in_scale``.
- :mod:`core.music.plan`: ``plan_song(*, seconds, bpm) -> SongPlan`` (sections with bar counts).
- :mod:`core.music.instruments`: ``GENRES``, ``MOODS``, ``ROLES``, ``get_genre``, ``get_mood``,
  ``parse_instruments``, ``program_for``.
- :mod:`core.music.midi`: ``Note``, ``Part``, ``encode_midi``, ``parts_to_midi``, ``midi_to_bytes``,
  ``midi_from_bytes``, ``midi_to_parts``.
- :mod:`core.music.render`: ``render_midi``, ``render_stems``, ``render_parts``, ``StemRenderer``,
  ``check_soundfont``.
- :mod:`core.music.arrange`: ``Samplers``, ``load_samplers``, ``arrange``, ``keep_in_key``.
"""
