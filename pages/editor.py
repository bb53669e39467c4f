"""Editor: open a generated song, a library track or an upload and shape it without changing the original.

Other pages open a project here with ``st.session_state["editor_project_id"] = <Project row id>`` (or
``st.session_state["editor_track_id"] = <Track id>`` for a library track) followed by
``st.switch_page("pages/editor.py")``.

The workspace (timeline, mixer, effects, history, preview, exports) is one ``st.fragment``: moving a
slider re-renders only the workspace, and only the stems whose operations changed are processed again
(a volume change re-mixes cached stems).
"""

from __future__ import annotations

import hashlib
import json
import time

import streamlit as st
from sqlmodel import Session

from components import resources
from components.editor_widgets import StripValues, effect_chain_editor, lane_figure, mixer_strip
from components.frame import in_frame
from components.session import require_user
from components.text import count
from core.errors import StudioError

in_frame()

P = "editor_project"
ROW = "editor_row_id"
REV = "editor_rev"
EXPORT = "editor_export"
FORMATS = ("mp3", "wav", "flac", "ogg")
MIME = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "zip": "application/zip",
    "mid": "audio/midi",
    "json": "application/json",
}


def _sources():
    from core.editor.project import StorageSources

    return StorageSources(resources.storage())


def _set_project(project, *, row_id: int | None) -> None:
    st.session_state[P] = project
    st.session_state[ROW] = row_id
    st.session_state[REV] = st.session_state.get(REV, 0) + 1
    st.session_state.pop(EXPORT, None)


def _fingerprint(project) -> str:
    """Digest of what a render depends on: the stems' content, the song's metadata and the ops in effect."""
    doc = {
        "stems": [s.content_id for s in project.stems],
        "meta": project.meta,
        "ops": [o.to_dict() for o in project.ops],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _apply(op) -> None:
    """Apply an op to the open project (callbacks); a refused op is shown and changes nothing."""
    try:
        st.session_state[P] = st.session_state[P].apply(op)
    except StudioError as exc:
        st.session_state["editor_error"] = str(exc)


def _move(step: str) -> None:
    project = st.session_state[P]
    st.session_state[P] = {"undo": project.undo, "redo": project.redo, "original": project.original}[step]()
    st.session_state[REV] = st.session_state.get(REV, 0) + 1


def _strip_changed(name: str, key: str) -> None:
    from core.editor import ops as O

    t = st.session_state[P].state().track(name)
    ss = st.session_state
    if ss[f"{key}_gain"] != t.gain_db:
        _apply(O.TrackGain(track=name, db=float(ss[f"{key}_gain"])))
    if ss[f"{key}_pan"] != t.pan:
        _apply(O.TrackPan(track=name, pan=float(ss[f"{key}_pan"])))
    if ss[f"{key}_mute"] != t.mute:
        _apply(O.Mute(track=name, on=bool(ss[f"{key}_mute"])))
    if ss[f"{key}_solo"] != t.solo:
        _apply(O.Solo(track=name, on=bool(ss[f"{key}_solo"])))


def _render(project, *, mastered: bool = True):
    """Render ``project``; a render that takes a while (a tempo or key change) shows a progress bar."""
    slot, started = st.empty(), time.monotonic()

    def progress(fraction: float, message: str) -> None:
        if time.monotonic() - started > 0.3:  # a quick re-mix does not flash a bar
            slot.progress(min(1.0, max(0.0, fraction)), text=message)

    try:
        return resources.editor_renderer().render(
            project, sources=_sources(), mastered=mastered, progress=progress
        )
    finally:
        slot.empty()


# --------------------------------------------------------------------------------------------------
# opening


def _open_incoming(user) -> None:
    from core.editor.project import from_track, load_project

    pid = st.session_state.pop("editor_project_id", None)
    tid = st.session_state.pop("editor_track_id", None)
    try:
        with Session(resources.engine()) as session:
            if pid is not None:
                _set_project(
                    load_project(session, resources.storage(), project_id=int(pid), owner_id=user.id),
                    row_id=int(pid),
                )
            elif tid is not None:
                _set_project(
                    from_track(session, resources.storage(), track_id=int(tid), viewer_id=user.id),
                    row_id=None,
                )
    except StudioError as exc:
        st.error(str(exc))


def _open_panel(user) -> None:
    from core.editor.project import from_track, from_upload, list_projects, load_project
    from core.library import list_user_tracks

    with Session(resources.engine()) as session:
        rows = [(r.id, r.title, r.updated_at) for r in list_projects(session, owner_id=user.id)]
        tracks = [(t.id, t.title) for t in list_user_tracks(session, owner_id=user.id)]
    t1, t2, t3 = st.tabs(["My projects", "From my library", "Upload a song"])
    with t1:
        if not rows:
            st.caption(
                "No saved projects yet. Generate a song and press “Open in editor”, or start from a track."
            )
        else:
            labels = {rid: f"{title} · saved {when:%Y-%m-%d %H:%M}" for rid, title, when in rows}
            pick = st.selectbox("Project", list(labels), format_func=labels.get, key="ed_pick_project")
            if st.button("Open project", key="ed_open_project"):
                try:
                    with Session(resources.engine()) as session:
                        project = load_project(
                            session, resources.storage(), project_id=pick, owner_id=user.id
                        )
                    _set_project(project, row_id=pick)
                    st.rerun()
                except StudioError as exc:
                    st.error(str(exc))
    with t2:
        if not tracks:
            st.caption("Your library is empty.")
        else:
            names = dict(tracks)
            pick_t = st.selectbox("Track", list(names), format_func=names.get, key="ed_pick_track")
            if st.button("Open track", key="ed_open_track"):
                try:
                    with st.spinner("Reading the track…"), Session(resources.engine()) as session:
                        project = from_track(session, resources.storage(), track_id=pick_t, viewer_id=user.id)
                    _set_project(project, row_id=None)
                    st.rerun()
                except StudioError as exc:
                    st.error(str(exc))
    with t3:
        from components.audio_input import audio_input

        got = audio_input("Song to edit", key="ed_upload", allow_record=False)
        if got is not None and st.button("Open upload", key="ed_open_upload"):
            try:
                with st.spinner("Analysing the song…"):
                    title = got.filename.rsplit(".", 1)[0][:80] or "Upload"
                    project = from_upload(got.y, sr=got.sr, sources=_sources(), title=title)
                _set_project(project, row_id=None)
                st.rerun()
            except StudioError as exc:
                st.error(str(exc))


# --------------------------------------------------------------------------------------------------
# the workspace


def _song_controls(project, state) -> None:
    from core.editor import ops as O

    base_bpm = project.meta.get("tempo_bpm")
    with st.form("ed_song_form", border=False):
        c1, c2 = st.columns(2)
        if base_bpm:
            bpm = c1.slider(
                "Tempo (bpm)", round(base_bpm * 0.5, 1), round(base_bpm * 2.0, 1),
                round(state.bpm or base_bpm, 1), 0.5, help=f"Original tempo: {base_bpm:.1f} bpm",
                key=f"ed_bpm_{st.session_state[REV]}",
            )  # fmt: skip
        else:
            ratio = c1.slider(
                "Speed", 0.5, 2.0, float(state.ratio), 0.01, key=f"ed_ratio_{st.session_state[REV]}"
            )
        semis = c2.slider(
            "Transpose (semitones)", -12, 12, int(state.semitones), 1, key=f"ed_key_{st.session_state[REV]}"
        )
        if st.form_submit_button("Apply tempo and key"):
            if base_bpm and abs(bpm - (state.bpm or base_bpm)) > 1e-6:
                _apply(O.SetTempo(bpm=float(bpm)))
            elif not base_bpm and abs(ratio - state.ratio) > 1e-6:
                _apply(O.SetTempo(ratio=float(ratio)))
            if semis != state.semitones:
                _apply(O.Transpose(semitones=int(semis)))
            st.session_state[REV] += 1
            st.rerun(scope="fragment")


def _timeline_controls(project, state) -> None:
    from core.editor import ops as O

    length = state.base_seconds
    ratio = state.ratio
    st.caption("Times are seconds of the song as it plays now.")
    c1, c2, c3 = st.columns(3)
    with c1.form("ed_loop_form", border=False):
        start, end = st.slider(
            "Loop region (s)", 0.0, round(length / ratio, 2), (0.0, min(4.0, length / ratio)), 0.05
        )
        times = st.number_input("Plays", 2, 16, 2, key="ed_loop_times")
        if st.form_submit_button("Loop"):
            _apply(O.Loop(start_s=start * ratio, end_s=min(end * ratio, length), times=int(times)))
            st.rerun(scope="fragment")
    with c2.form("ed_trim_form", border=False):
        t0, t1 = st.slider("Keep (s)", 0.0, round(length / ratio, 2), (0.0, round(length / ratio, 2)), 0.05)
        if st.form_submit_button("Trim"):
            _apply(O.Trim(start_s=t0 * ratio, end_s=min(t1 * ratio, length)))
            st.rerun(scope="fragment")
    with c3.form("ed_fade_form", border=False):
        fi = st.number_input("Fade in (s)", 0.0, 60.0, float(state.fade_in_s), 0.5)
        fo = st.number_input("Fade out (s)", 0.0, 60.0, float(state.fade_out_s), 0.5)
        if st.form_submit_button("Set fades"):
            _apply(O.Fade(in_s=float(fi), out_s=float(fo)))
            st.rerun(scope="fragment")


def _tracks(project, state, render) -> None:
    from core.editor import ops as O
    from core.editor.render import loop_regions

    regions = loop_regions(state)
    rev = st.session_state[REV]
    for t in state.tracks:
        key = f"ed_{rev}_{t.name}"
        with st.container(border=True):
            head, lane = st.columns([2, 5])
            with head:
                st.markdown(f"**{t.name}** · {'MIDI' if t.kind == 'midi' else 'audio'}")
                b1, b2 = st.columns(2)
                b1.button("Remove", key=f"{key}_rm", on_click=_apply, args=(O.RemoveTrack(track=t.name),))
                if t.kind == "audio" and t.source[0] == "stem":
                    b2.button("Split drums", key=f"{key}_split", on_click=_apply,
                              args=(O.SplitHarmonicPercussive(track=t.name),),
                              help="Separate drums (percussive) from the rest (harmonic).")  # fmt: skip
            with lane:
                fig = resources.editor_lane(
                    render.keys[t.name], tuple(regions), render.stems[t.name], render.sr
                )
                st.plotly_chart(fig, key=f"{key}_lane", config={"displayModeBar": False, "staticPlot": True})
            mixer_strip(
                t.name, StripValues(t.gain_db, t.pan, t.mute, t.solo), key=key,
                on_change=_strip_changed, args=(t.name, key),
            )  # fmt: skip
            with st.expander(f"{t.name} effects" + (f" ({len(t.chain)})" if t.chain else "")):
                chain = effect_chain_editor(t.chain, key=f"{key}_fx", title="Effect chain")
                if chain is not None:
                    _apply(O.TrackEffects(track=t.name, chain=chain))
                    st.rerun(scope="fragment")


def _add_track(project, state) -> None:
    from core.editor import ops as O
    from core.editor.ops import ADD_ROLES

    if not (project.meta.get("tempo_bpm") and project.meta.get("key")):
        st.caption("Adding instruments needs the song's tempo and key, which are unknown for this project.")
        return
    with st.form("ed_add_form", border=False):
        c1, c2 = st.columns(2)
        role = c1.selectbox("Instrument", ADD_ROLES, key="ed_add_role")
        seed = c2.number_input("Variation (seed)", 0, 2**31 - 1, 0, key="ed_add_seed")
        if st.form_submit_button("Add instrument"):
            _apply(O.AddTrack(role=role, seed=int(seed)))
            st.rerun(scope="fragment")


def _history(project) -> None:
    c1, c2, c3 = st.columns(3)
    c1.button(":material/undo:", key="ed_undo", help="Undo", on_click=_move, args=("undo",),
              disabled=not project.can_undo)  # fmt: skip
    c2.button(":material/redo:", key="ed_redo", help="Redo", on_click=_move, args=("redo",),
              disabled=not project.can_redo)  # fmt: skip
    c3.button(":material/restart_alt:", key="ed_orig", help="Back to the original (redo brings edits back)",
              on_click=_move, args=("original",), disabled=not project.can_undo)  # fmt: skip
    lines = ["0. Opened"] + [
        f"{i}. {e.label}" + ("" if i <= project.position else " (undone)")
        for i, e in enumerate(project.history, start=1)
    ]
    st.caption(f"Step {project.position} of {len(project.history)}")
    st.code("\n".join(lines[-15:]), language=None)


def _export(project, render) -> None:
    from core.editor.render import bundle_zip, export_mix, project_midi, stems_zip

    kinds = [f"Mix ({f.upper()})" for f in FORMATS] + ["Stems (zip)", "Project JSON", "Project bundle (zip)"]
    if project.has_midi:
        kinds.insert(len(FORMATS) + 1, "MIDI")
    c1, c2 = st.columns([3, 2])
    what = c1.selectbox("Export", kinds, key="ed_export_kind")
    safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in project.title).strip() or "beattok-edit"
    if c2.button("Prepare download", key="ed_export_prepare"):
        try:
            with st.spinner("Rendering…"):
                if what.startswith("Mix"):
                    fmt = what[5:-1].lower()
                    data, name, mime = (
                        export_mix(render, fmt=fmt, title=project.title),
                        f"{safe}.{fmt}",
                        MIME[fmt],
                    )
                elif what == "Stems (zip)":
                    data, name, mime = stems_zip(render), f"{safe}-stems.zip", MIME["zip"]
                elif what == "MIDI":
                    data, name, mime = (
                        project_midi(project, sources=_sources()) or b"",
                        f"{safe}.mid",
                        MIME["mid"],
                    )
                elif what == "Project JSON":
                    data, name, mime = project.to_json().encode(), f"{safe}.json", MIME["json"]
                else:
                    data, name, mime = (
                        bundle_zip(project, sources=_sources()),
                        f"{safe}-project.zip",
                        MIME["zip"],
                    )
        except StudioError as exc:
            st.error(str(exc))
        else:
            st.session_state[EXPORT] = {"fp": _fingerprint(project), "what": what, "data": data, "name": name,
                                        "mime": mime}  # fmt: skip
    ready = st.session_state.get(EXPORT)
    if ready and ready["fp"] == _fingerprint(project) and ready["what"] == what:
        st.download_button(
            f"Download {ready['name']} ({len(ready['data']) / 1e6:.1f} MB)", data=ready["data"],
            file_name=ready["name"], mime=ready["mime"], key="ed_export_download", on_click="ignore",
            type="primary",
        )  # fmt: skip


@st.fragment
def workspace() -> None:
    """Everything that changes with an edit: timeline, tracks, mixer, history, preview and exports."""
    project = st.session_state[P]
    err = st.session_state.pop("editor_error", None)
    if err:
        st.error(err)
    try:
        with st.spinner("Rendering…"):
            render = _render(project)
    except StudioError as exc:
        st.error(str(exc))
        return
    state = render.state
    bpm = f"{state.bpm:.1f} bpm" if state.bpm else "tempo unknown"
    key = project.meta.get("key") or "key unknown"
    shift = f" {state.semitones:+d} st" if state.semitones else ""
    counts = f"{count(len(state.tracks), 'track')} · {count(len(project.ops), 'edit')}"
    st.caption(f"{render.seconds:.1f} s · {bpm} · {key}{shift} · {counts}")

    left, right = st.columns([3, 1])
    with left:
        st.markdown("**Preview**")
        st.audio(resources.preview_wav(_fingerprint(project), render.mix, render.sr), format="audio/wav")
        if st.toggle("A/B: compare with the original", key="ed_ab"):
            original = resources.editor_renderer().render_original(project, sources=_sources())
            wav = resources.preview_wav(_fingerprint(project.original()), original.mix, original.sr)
            st.audio(wav, format="audio/wav")
            st.caption("Original (no edits), mastered the same way.")
        from core.editor.render import loop_regions

        st.plotly_chart(
            lane_figure(render.mix, sr=render.sr, regions=loop_regions(state), height=110), key="ed_mix_lane",
            config={"displayModeBar": False, "staticPlot": True},
        )  # fmt: skip
    with right:
        st.markdown("**History**")
        _history(project)

    tabs = st.tabs(["Mixer", "Tempo & key", "Timeline", "Instruments", "Master", "Export"])
    with tabs[0]:
        _tracks(project, state, render)
    with tabs[1]:
        _song_controls(project, state)
    with tabs[2]:
        _timeline_controls(project, state)
    with tabs[3]:
        _add_track(project, state)
    with tabs[4]:
        from core.editor import ops as O

        chain = effect_chain_editor(
            state.master_chain, key=f"ed_{st.session_state[REV]}_master", title="Master effects"
        )
        if chain is not None:
            _apply(O.MasterEffects(chain=chain))
            st.rerun(scope="fragment")
        st.caption("The master bus always ends with loudness normalisation (-14 LUFS) and a -1 dBTP limiter.")
    with tabs[5]:
        _export(project, render)


def _save_and_publish(user) -> None:
    from core.editor.project import save_project

    project = st.session_state[P]
    c1, c2 = st.columns(2)
    with c1.form("ed_save_form"):
        title = st.text_input("Project title", value=project.title, max_chars=120, key="ed_title")
        new_version = st.checkbox(
            "Save as a new version", value=False, disabled=st.session_state.get(ROW) is None
        )
        if st.form_submit_button("Save project"):
            from dataclasses import replace

            project = replace(st.session_state[P], title=title.strip() or project.title)
            row = None if new_version else st.session_state.get(ROW)
            try:
                with Session(resources.engine()) as session:
                    pid = save_project(
                        session, resources.storage(), owner_id=user.id, project=project, project_id=row
                    )
            except StudioError as exc:
                st.error(str(exc))
            else:
                st.session_state[P] = project
                st.session_state[ROW] = pid
                st.success(f"Saved project #{pid}.")
    with c2.form("ed_publish_form"):
        ptitle = st.text_input("Track title", value=project.title, max_chars=120, key="ed_pub_title")
        vis = st.selectbox("Visibility", ["public", "unlisted", "private"], key="ed_pub_vis")
        if st.form_submit_button("Publish to feed"):
            from core.library import publish_audio

            project = st.session_state[P]
            try:
                with st.spinner("Rendering and publishing…"):
                    render = _render(project)
                    state = render.state
                    with Session(resources.engine()) as session:
                        track = publish_audio(
                            session, resources.storage(), owner_id=user.id, y=render.mix, sr=render.sr,
                            title=ptitle, visibility=vis, source="editor", bpm=state.bpm,
                            key=project.meta.get("key") if not state.semitones else None,
                            genre=str(project.meta.get("genre") or ""),
                        )  # fmt: skip
                        track_id = track.id
            except StudioError as exc:
                st.error(str(exc))
            else:
                st.success(f"Published “{ptitle}” (track #{track_id}).")


user = require_user("edit songs")
st.title("Editor")
_open_incoming(user)
has_project = st.session_state.get(P) is not None
with st.expander("Open a song or project", expanded=not has_project):
    _open_panel(user)
if has_project:
    project = st.session_state[P]
    st.subheader(project.title)
    workspace()
    st.divider()
    _save_and_publish(user)
else:
    st.info("Open a saved project, a track from your library or an upload to start editing.")
