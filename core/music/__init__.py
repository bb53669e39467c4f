"""The music engine: theory, song plans, instruments, MIDI, soundfont rendering, arrangement, generation.

Entry point: :func:`core.music.generate.generate_song`. Submodules import their heavy dependencies
(pretty_midi, scipy, torch through the models) only when called.
"""
