"""The remember-me cookie: only a valid, unexpired token signed with our key logs anyone in."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import jwt
import pytest
from streamlit.testing.v1 import AppTest

from components.session import COOKIE_NAME, cookie_script, decode_cookie_username, encode_cookie_token
from tests.conftest import cookie_parts

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


def test_our_tokens_round_trip_and_expire():
    token = encode_cookie_token("mia", key=KEY)
    assert decode_cookie_username(token, key=KEY) == "mia"
    assert decode_cookie_username(token, key="another key" * 4) is None
    old = encode_cookie_token("mia", key=KEY, now=datetime.now() - timedelta(days=31))
    assert decode_cookie_username(old, key=KEY) is None  # 30 days
    # the claims streamlit-authenticator's cookie model wrote: its cookies still log people in
    assert set(jwt.decode(token, KEY, algorithms=["HS256"])) == {"username", "exp_date"}


def _cookie(script: str) -> list[str]:
    parts = cookie_parts(script)
    assert parts, script
    return parts


def test_the_page_script_writes_and_deletes_the_cookie():
    token = encode_cookie_token("mia", key=KEY)
    assert _cookie(cookie_script(token)) == [
        f"{COOKIE_NAME}={token}",
        "max-age=2592000",  # 30 days, as the token
        "path=/",
        "SameSite=Lax",
    ]
    assert _cookie(cookie_script(None)) == [f"{COOKIE_NAME}=", "max-age=0", "path=/", "SameSite=Lax"]
    assert "Secure" in cookie_script(token)  # added on https


def test_cookie_of_a_deleted_user_is_a_guest(db, monkeypatch):
    """A valid cookie whose user no longer exists must not log anyone in."""
    from components import session

    monkeypatch.setattr(session, "decode_cookie_username", lambda token, key: "ghost")
    script = """
import streamlit as st
from components import session
session.restore_session()
st.session_state["who"] = session.current_user()
"""
    at = AppTest.from_string(script, default_timeout=30)
    at.run()
    assert not at.exception
    assert at.session_state["who"] is None
