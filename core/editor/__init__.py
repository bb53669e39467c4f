"""The editor: non-destructive multi-track projects (immutable stems + ordered operations).

* :mod:`core.editor.ops` -- typed, validated operations and the project JSON schema.
* :mod:`core.editor.project` -- the project model, history with undo/redo, JSON, saved versions.
* :mod:`core.editor.render` -- stems + ops -> audio with a per-stem cache; exports.

Heavy libraries (pedalboard, librosa, pretty_midi) are imported inside the functions that use them.
"""
