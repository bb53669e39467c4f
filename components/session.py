"""Who is logged in: session restore from the remember-me cookie, log in/out, page guards.

The remember-me cookie is streamlit-authenticator's (a JWT signed with our strong key, set in
the browser through its cookie manager). Its credential store (a YAML-shaped dict it mutates in
place) is not used: users, password hashes and login throttling live in the database through
:mod:`core.auth`. A forged, expired or malformed cookie means "logged out", never an error.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import streamlit as st
from sqlmodel import Session

from components import resources
from core.auth import UserInfo, get_user

COOKIE_NAME = "beattok_auth"
COOKIE_DAYS = 30.0
_USER_KEY = "user_id"
_PENDING = "_auth_cookie_pending"


def _cookie_model():
    """streamlit-authenticator's cookie model with a decoder that never raises."""
    import jwt
    from streamlit_authenticator.models.cookie_model import CookieModel

    class SafeCookieModel(CookieModel):
        def _token_decode(self):
            try:
                token = jwt.decode(self.token, self.cookie_key, algorithms=["HS256"])
            except (jwt.InvalidTokenError, TypeError, ValueError):
                return False
            return token if isinstance(token, dict) else False

    st.session_state.setdefault("logout", None)
    return SafeCookieModel(COOKIE_NAME, resources.cookie_key(), COOKIE_DAYS)


def decode_cookie_username(token: str | None, *, key: str, now: datetime | None = None) -> str | None:
    """Return the username in a valid, unexpired cookie token, else None (never raises).

    Parameters
    ----------
    token : str or None
        The raw cookie value.
    key : str
        The signing key.
    now : datetime, optional
        The current time (for tests).
    """
    if not token or not isinstance(token, str):
        return None
    import jwt  # here, not at the top: a first visit has no cookie and skips the import (40 ms)

    try:
        data = jwt.decode(token, key, algorithms=["HS256"])
    except (jwt.InvalidTokenError, TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    username, exp = data.get("username"), data.get("exp_date")
    if not isinstance(username, str) or not isinstance(exp, int | float):
        return None
    if exp <= (now or datetime.now()).timestamp():
        return None
    return username


def restore_session() -> None:
    """Log the browser's user in from the remember-me cookie (call once per run, from app.py)."""
    if st.session_state.get(_USER_KEY) or st.session_state.get("logged_out"):
        return
    try:
        token = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser context (AppTest, bare mode)
        token = None
    username = decode_cookie_username(token, key=resources.cookie_key())
    if not username:
        return
    from core.auth import get_user_by_username

    with Session(resources.engine()) as session:
        user = get_user_by_username(session, username)
    if user is not None:
        st.session_state[_USER_KEY] = user.id


def current_user() -> UserInfo | None:
    """The logged-in user, or None for a guest (a deleted account reads as a guest)."""
    user_id = st.session_state.get(_USER_KEY)
    if not user_id:
        return None
    with Session(resources.engine()) as session:
        user = get_user(session, int(user_id))
    if user is None:
        st.session_state.pop(_USER_KEY, None)
    return user


def require_user(action: str = "use this screen") -> UserInfo:
    """Return the logged-in user; for a guest, show a log-in prompt and stop the page."""
    user = current_user()
    if user is None:
        st.info(f"Log in or sign up to {action}. Browsing the feed and share links is open to everyone.")
        if st.button("Log in / Sign up", type="primary", key="require_user_login"):
            st.switch_page("pages/account.py")
        st.stop()
    return user


def start_session(user: UserInfo, *, remember: bool = True) -> None:
    """Mark ``user`` as logged in for this browser session; queue the remember-me cookie."""
    st.session_state[_USER_KEY] = user.id
    st.session_state.pop("logged_out", None)
    st.session_state["username"] = user.username
    if remember:
        st.session_state[_PENDING] = "set"


def end_session() -> None:
    """Log out: forget the user and queue the deletion of the remember-me cookie."""
    for key in (_USER_KEY, "username"):
        st.session_state.pop(key, None)
    st.session_state["logged_out"] = True
    st.session_state[_PENDING] = "delete"


def sync_cookie() -> None:
    """Set or delete the remember-me cookie in the browser (call on every run, from app.py).

    The cookie manager is a component: its set/delete run in the browser only once the component
    is mounted, and a rerun can unmount it first. So the pending action is re-rendered on every run
    until the browser's cookie list (read back by the same component) confirms it.
    """
    pending = st.session_state.get(_PENDING)
    if not pending:
        return
    model = _cookie_model()
    present = COOKIE_NAME in (model.cookie_manager.cookies or {})
    if pending == "set" and st.session_state.get("username"):
        if (
            present
            and decode_cookie_username(
                model.cookie_manager.cookies.get(COOKIE_NAME), key=resources.cookie_key()
            )
            == st.session_state["username"]
        ):
            st.session_state.pop(_PENDING, None)
        else:
            with contextlib.suppress(Exception):  # a convenience: the session is logged in already
                model.set_cookie()
    elif pending == "delete" and present:
        with contextlib.suppress(Exception):
            model.delete_cookie()
    else:
        st.session_state.pop(_PENDING, None)
