"""Who is logged in: session restore from the remember-me cookie, log in/out, page guards.

The remember-me cookie holds a JWT signed with our strong key (``{"username", "exp_date"}``, HS256: the
format of streamlit-authenticator's cookie model, so cookies it wrote still log people in). The browser
gets it from a short script in the page, not from the package's cookie manager: that is an iframe
component whose value reports rerun the page, and a rerun sent with the old page's address cancels a
page change clicked in the second after logging in (2 of 8 clicks lost on a busy machine). Users,
password hashes and login throttling live in the database through :mod:`core.auth`. A forged, expired
or malformed cookie means "logged out", never an error.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import streamlit as st
from sqlmodel import Session

from components import resources
from core.auth import UserInfo, get_user

COOKIE_NAME = "beattok_auth"
COOKIE_DAYS = 30.0
_USER_KEY = "user_id"
_PENDING = "_auth_cookie_pending"
#: how long after a log-in or log-out the cookie script is drawn again on every run (a run interrupted
#: before its sidebar reached the browser does not write it)
COOKIE_SYNC_S = 60.0
_COOKIE_SCRIPT = """<script>
document.cookie = %(cookie)s + (window.location.protocol === "https:" ? "; Secure" : "");
</script>"""


def encode_cookie_token(
    username: str, *, key: str, now: datetime | None = None, days: float = COOKIE_DAYS
) -> str:
    """The remember-me token for ``username``, valid for ``days`` from ``now``.

    Examples
    --------
    >>> token = encode_cookie_token("mia", key="k" * 64)
    >>> decode_cookie_username(token, key="k" * 64)
    'mia'
    """
    import jwt

    exp = ((now or datetime.now()) + timedelta(days=float(days))).timestamp()
    return jwt.encode({"username": username, "exp_date": exp}, key, algorithm="HS256")


def cookie_script(token: str | None, *, days: float = COOKIE_DAYS) -> str:
    """A script that writes the remember-me cookie with ``token`` in the browser, or deletes it (None).

    The cookie is for the whole site (``path=/``), ``SameSite=Lax``, ``Secure`` on https, and lasts
    as long as the token (``max-age``). The value is a JWT (base64url and dots), written as a JSON
    string literal.

    Examples
    --------
    >>> "beattok_auth=; max-age=0; path=/" in cookie_script(None)
    True
    """
    value, max_age = ("", 0) if token is None else (token, round(float(days) * 86400))
    cookie = f"{COOKIE_NAME}={value}; max-age={max_age}; path=/; SameSite=Lax"
    return _COOKIE_SCRIPT % {"cookie": json.dumps(cookie)}


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
        token = encode_cookie_token(user.username, key=resources.cookie_key())
        st.session_state[_PENDING] = (cookie_script(token), time.monotonic() + COOKIE_SYNC_S)


def end_session() -> None:
    """Log out: forget the user and queue the deletion of the remember-me cookie."""
    for key in (_USER_KEY, "username"):
        st.session_state.pop(key, None)
    st.session_state["logged_out"] = True
    st.session_state[_PENDING] = (cookie_script(None), time.monotonic() + COOKIE_SYNC_S)


def sync_cookie() -> None:
    """Write or delete the remember-me cookie in the browser (call on every run, from app.py).

    The script is drawn on every run for :data:`COOKIE_SYNC_S` after the log-in or log-out; the
    browser runs it when it first shows it (the same script again changes nothing), so it needs no
    answer from the browser and triggers no rerun.
    """
    pending = st.session_state.get(_PENDING)
    if not pending:
        return
    script, until = pending
    if time.monotonic() > until:
        st.session_state.pop(_PENDING, None)
        return
    st.html(script, unsafe_allow_javascript=True)
