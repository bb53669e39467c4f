"""The remember-me cookie: only a valid, unexpired token signed with our key logs anyone in."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import jwt
import pytest
from streamlit.testing.v1 import AppTest

from components.session import decode_cookie_username

KEY = "k" * 64


def _token(username="alice", *, key=KEY, days=1.0, alg="HS256"):
    exp = (datetime.now() + timedelta(days=days)).timestamp()
    return jwt.encode({"username": username, "exp_date": exp}, key, algorithm=alg)


def _unsigned(payload: dict) -> str:
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


def test_valid_token_gives_username():
    assert decode_cookie_username(_token(), key=KEY) == "alice"


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "garbage",
        "a.b.c",
        _token(key="another key" * 4),  # signed with someone else's key
        _token(days=-1),  # expired
        _token(alg="HS512"),  # algorithm we do not accept
        _unsigned({"username": "alice", "exp_date": 4102444800}),  # forged alg=none
        jwt.encode({"user": "alice"}, KEY, algorithm="HS256"),  # no username / expiry
        jwt.encode({"username": 5, "exp_date": "never"}, KEY, algorithm="HS256"),  # wrong types
    ],
)
def test_bad_tokens_read_as_logged_out(token):
    assert decode_cookie_username(token, key=KEY) is None


def test_streamlit_authenticator_cookie_model_is_wrapped_against_forged_tokens(db):
    """The package's own decoder raises on alg=none; ours must read it as logged out."""
    script = f"""
import streamlit as st
from components.session import _cookie_model
model = _cookie_model()
model.token = {_unsigned({"username": "alice", "exp_date": 4102444800})!r}
st.session_state["decoded"] = model._token_decode()
"""
    at = AppTest.from_string(script, default_timeout=30)
    at.run()
    assert not at.exception
    assert at.session_state["decoded"] is False


def test_cookie_of_a_deleted_user_is_a_guest(db):
    """A valid cookie whose user no longer exists must not log anyone in."""
    script = """
import streamlit as st
from components import session
session.decode_cookie_username = lambda token, key: "ghost"
session.restore_session()
st.session_state["who"] = session.current_user()
"""
    at = AppTest.from_string(script, default_timeout=30)
    at.run()
    assert not at.exception
    assert at.session_state["who"] is None
