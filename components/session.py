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
    import jwt

    if not token or not isinstance(token, str):
        return None
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
    """Mark ``user`` as logged in for this browser session and set the remember-me cookie."""
    st.session_state[_USER_KEY] = user.id
    st.session_state.pop("logged_out", None)
    if remember:
        st.session_state["username"] = user.username
        # the cookie is a convenience; the session itself is already logged in
        with contextlib.suppress(Exception):
            _cookie_model().set_cookie()


def end_session() -> None:
    """Log out: forget the user and delete the remember-me cookie."""
    for key in (_USER_KEY, "username"):
        st.session_state.pop(key, None)
    st.session_state["logged_out"] = True
    with contextlib.suppress(Exception):
        _cookie_model().delete_cookie()
