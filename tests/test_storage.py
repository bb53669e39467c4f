"""Local media storage: generated keys, atomic writes, key validation, idempotent delete."""

from __future__ import annotations

import os
import re

import pytest

from core.errors import InputError, NotFoundError
from core.storage import LocalStorage, Storage, get_storage, validate_key

KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}\.[a-z0-9.]{1,10}$")


def _all_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_put_get_roundtrip_and_key_shape(tmp_path):
    store = LocalStorage(tmp_path / "media")
    assert isinstance(store, Storage)
    k1 = store.put(b"hello", suffix="wav")
    k2 = store.put(b"hello", suffix=".wav")
    assert KEY.match(k1) and KEY.match(k2)
    assert k1 != k2  # same bytes, two independent files
    assert k1[:2] == k2[:2]  # folder derives from the content hash
    assert store.get(k1) == b"hello"
    assert store.open_path(k1).read_bytes() == b"hello"
    assert store.exists(k1)
    assert _all_files(tmp_path / "media") == sorted([k1, k2])  # no temp files left
    assert store.put(b"", suffix="tar.gz").endswith(".tar.gz")


def test_delete_is_idempotent(tmp_path):
    store = LocalStorage(tmp_path)
    key = store.put(b"x" * 1000, suffix="png")
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # again: fine
    with pytest.raises(NotFoundError, match="was not found"):
        store.get(key)
    with pytest.raises(NotFoundError):
        store.open_path(key)


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "../../etc/passwd",
        "/etc/passwd",
        "ab/../../x.wav",
        "ab/" + "0" * 32,  # no suffix
        "AB/" + "0" * 32 + ".wav",  # upper case
        "ab/" + "0" * 31 + ".wav",
        "ab/" + "0" * 32 + ".wav/..",
        "ab\\" + "0" * 32 + ".wav",
        "ab/" + "0" * 32 + ".wav\x00",
        "ab/" + "0" * 32 + ".wav\n",
        "ab/" + "0" * 32 + ".abcdefghijk",  # suffix too long
        "",
    ],
)
def test_invalid_keys_are_rejected_everywhere(tmp_path, bad):
    store = LocalStorage(tmp_path / "media")
    (tmp_path / "x").write_bytes(b"secret")
    for op in (store.get, store.open_path, store.exists, store.delete):
        with pytest.raises(InputError, match="Invalid storage key"):
            op(bad)
    assert (tmp_path / "x").read_bytes() == b"secret"


def test_validate_key_rejects_non_strings():
    with pytest.raises(InputError, match="must be text"):
        validate_key(None)


@pytest.mark.parametrize("suffix", ["", ".", "..", "WAV", "w/v", "../wav", "wav.", "a" * 11, "wav\n", "mp 3"])
def test_bad_suffixes_are_rejected_and_nothing_written(tmp_path, suffix):
    store = LocalStorage(tmp_path)
    with pytest.raises(InputError, match="suffix"):
        store.put(b"data", suffix=suffix)
    assert _all_files(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    store = LocalStorage(tmp_path)

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        store.put(b"abc" * 1000, suffix="wav")
    assert _all_files(tmp_path) == []


def test_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    store = LocalStorage(tmp_path)

    def boom(src, dst):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.put(b"abc", suffix="wav")
    assert _all_files(tmp_path) == []


def test_put_rejects_non_bytes(tmp_path):
    with pytest.raises(InputError, match="must be bytes"):
        LocalStorage(tmp_path).put("text", suffix="txt")


def test_get_storage_uses_media_dir(_isolated_data_dir):
    store = get_storage()
    assert store.root == (_isolated_data_dir / "media").resolve()
    key = store.put(b"z", suffix="ogg")
    assert (_isolated_data_dir / "media" / key).is_file()


def test_find_keys_in_text():
    from core.storage import find_keys

    a = "ab/" + "0" * 32 + ".flac"
    b = "cd/" + "f" * 32 + ".tar.gz"
    text = f'{{"s": ["{a}", "{b}"], "bad": ["../{a}x", "AB/{"0" * 32}.wav", "x{a}", "/etc/passwd"]}}'
    assert find_keys(text) == {a, b}
    assert find_keys("") == set()
