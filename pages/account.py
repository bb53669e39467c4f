"""Log in, sign up, and manage the account (password, delete, log out)."""

from __future__ import annotations

import time

import streamlit as st
from sqlmodel import Session

from components import resources
from components.frame import in_frame
from components.session import current_user, end_session, start_session
from core.errors import StudioError

in_frame()

FLASH_SECONDS = 10.0


def _set_flash(message: str) -> None:
    """A message for the next runs (shown for a few seconds, whatever reruns the page meanwhile)."""
    st.session_state["account_flash"] = (message, time.monotonic())


def _flash() -> str | None:
    message, at = st.session_state.get("account_flash") or (None, 0.0)
    return message if time.monotonic() - at < FLASH_SECONDS else None


user = current_user()

if user is None:
    logged_in, remember_me = None, True
    st.title("Welcome to BeatTok Studio")
    if flash := _flash():
        st.info(flash)
    login_tab, signup_tab = st.tabs(["Log in", "Sign up"])
    with login_tab, st.form("login_form"):
        username = st.text_input("Username", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        remember = st.checkbox("Keep me logged in on this browser", value=True)
        if st.form_submit_button("Log in", type="primary"):
            from core.auth import log_in

            try:
                with Session(resources.engine()) as session:
                    info = log_in(session, username=username, password=password)
            except StudioError as exc:
                st.error(str(exc))
            else:
                logged_in, remember_me = info, remember
    with signup_tab, st.form("signup_form"):
        name = st.text_input("Artist name", max_chars=60, key="signup_name")
        new_username = st.text_input(
            "Username", max_chars=32, key="signup_username", help="3-32 characters: letters, digits, _ . -"
        )
        email = st.text_input("Email", key="signup_email")
        pw1 = st.text_input("Password", type="password", key="signup_pw1", help="At least 8 characters.")
        pw2 = st.text_input("Repeat password", type="password", key="signup_pw2")
        if st.form_submit_button("Create account", type="primary"):
            if pw1 != pw2:
                st.error("The two passwords differ.")
            else:
                from core.auth import sign_up

                try:
                    with Session(resources.engine()) as session:
                        info = sign_up(session, username=new_username, email=email, name=name, password=pw1)
                except StudioError as exc:
                    st.error(str(exc))
                else:
                    logged_in, remember_me = info, True
    if logged_in is not None:
        start_session(logged_in, remember=remember_me)
        _set_flash(f"Welcome, {logged_in.name}! You are logged in.")
        st.rerun()  # redraw the frame (sidebar, account view) as the logged-in user
    st.stop()

st.title("Your account")
if flash := _flash():
    st.success(flash)
    c1, c2 = st.columns(2)
    c1.page_link("pages/upload.py", label="Upload a track", icon=":material/upload:")
    c2.page_link("pages/feed.py", label="Go to the feed", icon=":material/home:")
st.write(f"Logged in as **{user.username}** ({user.email}).")
if st.button("Log out", key="account_logout"):
    end_session()
    _set_flash("You are logged out.")
    st.rerun()

# Outcomes are shown on the run after the form's: a notice above the expanders, an error inside its
# expander, opened for it (an expander can be drawn collapsed again on that run, hiding its form's
# message, e.g. when the welcome message above it has timed out).
if notice := st.session_state.pop("account_notice", None):
    st.success(notice)
pw_error = st.session_state.pop("account_pw_error", None)
with (
    st.expander("Change password", icon=":material/key:", expanded=pw_error is not None),
    st.form("change_pw", clear_on_submit=True),
):
    if pw_error:
        st.error(pw_error)
    old = st.text_input("Current password", type="password")
    new1 = st.text_input("New password", type="password")
    new2 = st.text_input("Repeat new password", type="password")
    if st.form_submit_button("Change password"):
        if new1 != new2:
            st.session_state["account_pw_error"] = "The two new passwords differ."
        else:
            from core.auth import change_password

            try:
                with Session(resources.engine()) as session:
                    change_password(session, user_id=user.id, old_password=old, new_password=new1)
                st.session_state["account_notice"] = "Password changed."
            except StudioError as exc:
                st.session_state["account_pw_error"] = str(exc)
        st.rerun()

delete_error = st.session_state.pop("account_delete_error", None)
with (
    st.expander("Delete account", icon=":material/delete_forever:", expanded=delete_error is not None),
    st.form("delete_account", clear_on_submit=True),
):
    if delete_error:
        st.error(delete_error)
    st.warning("This deletes your account, all your tracks, projects and albums. It cannot be undone.")
    pw = st.text_input("Password", type="password", key="delete_pw")
    sure = st.checkbox("I understand, delete everything")
    if st.form_submit_button("Delete my account", type="primary"):
        if not sure:
            st.session_state["account_delete_error"] = "Tick the box to confirm."
            st.rerun()
        from core.auth import delete_account

        try:
            with Session(resources.engine()) as session:
                delete_account(session, resources.storage(), user_id=user.id, password=pw)
        except StudioError as exc:
            st.session_state["account_delete_error"] = str(exc)
        else:
            end_session()
            _set_flash("Your account was deleted.")
        st.rerun()
