"""Encryption at rest: AES-256-GCM bound to its row, several keys, fail-closed, generated key file."""

from __future__ import annotations

import base64
import logging
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from mcp_hub.crypto import (
    KEY_BYTES,
    Keyring,
    RowBinding,
    generate_key_entry,
    load_keyring,
    parse_key_list,
    prepend_key_to_file,
)
from mcp_hub.errors import ConfigError, DecryptionError

BINDING = RowBinding(
    table="mcp_user_credentials", row_id="row-1", field="oauth2", user_id="user-1", server_id="server-1"
)


def _entry(key_id: str, byte: int) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(bytes([byte]) * KEY_BYTES).decode()}"


def _keyring(*entries: str) -> Keyring:
    return load_keyring(",".join(entries), Path("/nonexistent/never-used"))


def test_round_trip_returns_the_plaintext_and_the_primary_key_id() -> None:
    keyring = _keyring(_entry("a", 1))
    ciphertext, key_id = keyring.encrypt(b"top secret", BINDING)
    assert key_id == "a"
    assert b"top secret" not in ciphertext
    assert keyring.decrypt(ciphertext, key_id, BINDING) == b"top secret"


def test_json_round_trip() -> None:
    keyring = _keyring(_entry("a", 1))
    value = {"access_token": "t", "refresh_token": "r", "n": [1, 2]}
    ciphertext, key_id = keyring.encrypt_json(value, BINDING)
    assert keyring.decrypt_json(ciphertext, key_id, BINDING) == value


def test_same_plaintext_encrypts_differently_each_time() -> None:
    keyring = _keyring(_entry("a", 1))
    first, _ = keyring.encrypt(b"x", BINDING)
    second, _ = keyring.encrypt(b"x", BINDING)
    assert first != second


@pytest.mark.parametrize(
    "other",
    [
        replace(BINDING, row_id="row-2"),
        replace(BINDING, field="byok"),
        replace(BINDING, user_id="user-2"),
        replace(BINDING, server_id="server-2"),
        replace(BINDING, table="mcp_servers"),
        replace(BINDING, user_id=None),
    ],
    ids=["other-row", "other-type", "other-user", "other-server", "other-table", "no-user"],
)
def test_ciphertext_moved_to_another_binding_fails_with_a_clear_message(other: RowBinding) -> None:
    keyring = _keyring(_entry("a", 1))
    ciphertext, key_id = keyring.encrypt(b"secret", BINDING)
    with pytest.raises(DecryptionError) as caught:
        keyring.decrypt(ciphertext, key_id, other)
    message = caught.value.message
    assert f"row {other.row_id}" in message
    assert "does not belong to this row" in message
    assert "secret" not in message.replace("secrets", "")


def test_tampered_ciphertext_fails() -> None:
    keyring = _keyring(_entry("a", 1))
    ciphertext, key_id = keyring.encrypt(b"secret", BINDING)
    flipped = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    with pytest.raises(DecryptionError, match="does not belong to this row"):
        keyring.decrypt(flipped, key_id, BINDING)


@pytest.mark.parametrize("garbage", [b"", b"\x01short", b"\x02" + b"0" * 40, b"plaintext fallback?"])
def test_not_a_ciphertext_fails_closed(garbage: bytes) -> None:
    keyring = _keyring(_entry("a", 1))
    with pytest.raises(DecryptionError, match="not a ciphertext this hub wrote"):
        keyring.decrypt(garbage, "a", BINDING)


def test_unknown_key_id_fails_closed_naming_the_key() -> None:
    writer = _keyring(_entry("old", 1))
    ciphertext, key_id = writer.encrypt(b"secret", BINDING)
    reader = _keyring(_entry("new", 2))
    with pytest.raises(DecryptionError) as caught:
        reader.decrypt(ciphertext, key_id, BINDING)
    assert "'old'" in caught.value.message
    assert "not configured" in caught.value.message


def test_wrong_key_under_the_same_id_fails_closed() -> None:
    ciphertext, key_id = _keyring(_entry("a", 1)).encrypt(b"secret", BINDING)
    with pytest.raises(DecryptionError, match="key 'a' is wrong"):
        _keyring(_entry("a", 9)).decrypt(ciphertext, key_id, BINDING)


def test_first_key_encrypts_and_older_keys_still_decrypt() -> None:
    old = _keyring(_entry("a", 1))
    old_ciphertext, old_id = old.encrypt(b"from before", BINDING)
    both = _keyring(_entry("b", 2), _entry("a", 1))
    assert both.primary_id == "b"
    assert both.key_ids == ["b", "a"]
    new_ciphertext, new_id = both.encrypt(b"from now", BINDING)
    assert new_id == "b"
    assert both.decrypt(old_ciphertext, old_id, BINDING) == b"from before"
    assert both.decrypt(new_ciphertext, new_id, BINDING) == b"from now"
    # Only the new key left: new ciphertexts decrypt, the old one fails closed naming key a.
    only_b = _keyring(_entry("b", 2))
    assert only_b.decrypt(new_ciphertext, new_id, BINDING) == b"from now"
    with pytest.raises(DecryptionError, match="'a'"):
        only_b.decrypt(old_ciphertext, old_id, BINDING)


def test_key_list_accepts_newlines_comments_and_unpadded_base64() -> None:
    unpadded = base64.urlsafe_b64encode(b"\x03" * KEY_BYTES).decode().rstrip("=")
    keys = parse_key_list(f"# comment\n{_entry('a', 1)}\n\n b:{unpadded} ,")
    assert keys == [("a", b"\x01" * KEY_BYTES), ("b", b"\x03" * KEY_BYTES)]


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("no-colon-here", "key_id:base64key"),
        (":" + base64.urlsafe_b64encode(b"\x01" * KEY_BYTES).decode(), "key_id:base64key"),
        ("a:", "key_id:base64key"),
        ("a:!!!not base64!!!", "'a' is not valid base64"),
        ("a:" + base64.urlsafe_b64encode(b"\x01" * 16).decode(), "'a' must be 32 bytes"),
        (_entry("a", 1) + "," + _entry("a", 2), "unique"),
        (" , # only a comment", "no encryption key configured"),
    ],
    ids=["no-separator", "no-id", "no-key", "bad-base64", "short-key", "duplicate-id", "empty"],
)
def test_malformed_key_configuration_is_a_config_error(configured: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_keyring(configured, Path("/nonexistent/never-used"))
    assert expected in caught.value.message


def test_generated_key_file_is_0600_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key_file = tmp_path / "data" / "encryption.keys"
    caplog.set_level(logging.DEBUG)
    first = load_keyring(None, key_file)
    second = load_keyring(None, key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert first.primary_id == second.primary_id
    ciphertext, key_id = first.encrypt(b"kept", BINDING)
    assert second.decrypt(ciphertext, key_id, BINDING) == b"kept"
    generated = [r for r in caplog.records if "generated a new encryption key" in r.getMessage()]
    assert len(generated) == 1
    assert str(key_file) in generated[0].getMessage()
    # The log line names the file, never the key material.
    key_material = key_file.read_text().strip().split(":", 1)[1]
    assert all(key_material not in r.getMessage() for r in caplog.records)


def test_configured_keys_take_precedence_over_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "encryption.keys"
    keyring = load_keyring(_entry("cfg", 1), key_file)
    assert keyring.primary_id == "cfg"
    assert not key_file.exists()


def test_prepend_key_makes_the_new_key_primary_and_keeps_the_old(tmp_path: Path) -> None:
    key_file = tmp_path / "encryption.keys"
    old = load_keyring(None, key_file)
    new_id = prepend_key_to_file(key_file)
    both = load_keyring(None, key_file)
    assert both.primary_id == new_id != old.primary_id
    assert both.key_ids == [new_id, old.primary_id]
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_generated_entries_are_unique_and_valid() -> None:
    entries = {generate_key_entry() for _ in range(20)}
    assert len(entries) == 20
    for entry in entries:
        ((key_id, key),) = parse_key_list(entry)
        assert key_id.startswith("k") and len(key) == KEY_BYTES
