"""Save a project and open it in the editor: "Open in editor" on the Generate and Add-beats pages."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def save_and_open_in_editor(
    build_project: Callable, *, user_id: int, on_saved: Callable[[], None] | None = None
) -> None:
    """Save the project ``build_project(sources)`` makes, as ``user_id``'s, and switch to the editor.

    ``build_project`` receives the app's :class:`core.editor.project.StorageSources` (where the stems are
    stored). A :class:`core.errors.StudioError` is shown as an error and nothing is opened. When the
    editor page is not part of this app run (a page tested on its own), the project's number is shown
    instead. ``on_saved`` runs once the project is saved, before the switch.
    """
    from sqlmodel import Session
    from streamlit.errors import StreamlitAPIException

    from components import resources
    from core.editor.project import StorageSources, save_project
    from core.errors import StudioError

    try:
        with st.spinner("Saving the project…"), Session(resources.engine()) as session:
            project = build_project(StorageSources(resources.storage()))
            pid = save_project(session, resources.storage(), owner_id=user_id, project=project)
    except StudioError as exc:
        st.error(str(exc))
        return
    st.session_state["editor_project_id"] = pid
    if on_saved is not None:
        on_saved()
    try:
        st.switch_page("pages/editor.py")
    except StreamlitAPIException:  # the editor page is not part of this app run
        st.success(f"Saved as project #{pid}: open it from the editor.")
