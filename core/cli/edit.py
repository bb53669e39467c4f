"""``python -m core edit``: render an editor project file, or print the operations' JSON schema.

Examples::

    python -m core edit --schema > editor-schema.json
    python -m core edit project.json --out song.mp3 --stems stems_out/

``project.json`` is the project file of a bundle downloaded from the editor ("Project bundle"); its stems
are paths relative to the JSON file. The render is exactly the editor's (same chain, same mastering).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FORMATS = ("wav", "mp3", "flac", "ogg")


def register(sub) -> None:
    """Add the ``edit`` subcommand."""
    p = sub.add_parser("edit", help="render an editor project file (or print the operations' schema)")
    p.add_argument("project", nargs="?", help="project JSON with stem paths relative to it")
    p.add_argument("--out", help="output audio file: .wav, .mp3, .flac or .ogg")
    p.add_argument(
        "--stems", metavar="DIR", help="also write each audible track (gain/pan applied) as WAV here"
    )
    p.add_argument("--schema", action="store_true", help="print the JSON schema of project files and exit")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the command; returns the exit status."""
    from core.errors import InputError

    if args.schema:
        from core.editor.ops import schema

        print(json.dumps(schema(), indent=2))
        return 0
    if not args.project or not args.out:
        raise InputError("edit needs PROJECT.json and --out OUT.(wav|mp3|flac|ogg) (or --schema).")
    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"--out {args.out!r}: the extension must be one of {', '.join(FORMATS)}.")
    src_path = Path(args.project)
    try:
        text = src_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read project file {args.project!r} ({exc.strerror or exc}).") from None

    from core.audio.io import encode
    from core.editor.project import PathSources, Project
    from core.editor.render import Renderer, export_mix
    from core.progress import text_progress

    project = Project.from_json(text)
    sources = PathSources(src_path.resolve().parent)
    render = Renderer().render(project, sources=sources, progress=text_progress())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(export_mix(render, fmt=fmt, title=project.title))
    written = [str(out)]
    if args.stems:
        folder = Path(args.stems)
        folder.mkdir(parents=True, exist_ok=True)
        for t in render.state.audible():
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in t.name)
            path = folder / f"{safe}.wav"
            path.write_bytes(
                encode(render.post_fader(t.name).clip(-1, 1), sr=render.sr, fmt="wav", bit_depth=24)
            )
            written.append(str(path))
    summary = {
        "out": str(out),
        "seconds": round(render.seconds, 3),
        "tracks": [t.name for t in render.state.audible()],
        "ops": len(project.ops),
        "bpm": render.state.bpm,
        "files": written,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        n_tracks, n_ops = len(summary["tracks"]), len(project.ops)
        print(f"wrote {out} ({render.seconds:.1f} s, {n_tracks} tracks, {n_ops} edits)", file=sys.stderr)
    return 0
