"""Envelope encryption of secrets at rest: AES-256-GCM, a key id stored with every row, and associated
data that binds each ciphertext to the row (table, row id, user, server, field) it was written for.

Several keys can be configured at once. The first one listed encrypts; every listed key decrypts, so a
new key can be put in front, `mcp-hub credentials rotate-key` re-wraps every row, and the old key can then
be dropped. There is no plaintext fallback: a missing or wrong key is an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcp_hub.errors import ConfigError, DecryptionError

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"


@dataclass(frozen=True)
class RowBinding:
    """What a ciphertext belongs to. Every part goes into the GCM associated data, so a ciphertext copied
    into another row, another column or another user's credential does not decrypt."""

    table: str
    row_id: str
    field: str
    user_id: str | None = None
    server_id: str | None = None

    def associated_data(self) -> bytes:
        return json.dumps(
            [self.table, self.row_id, self.field, self.user_id, self.server_id], separators=(",", ":")
        ).encode()


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("no encryption key configured")
        for key_id, key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigError(f"encryption key {key_id!r} must be {KEY_BYTES} bytes (got {len(key)})")
        ids = [key_id for key_id, _ in keys]
        if len(set(ids)) != len(ids):
            raise ConfigError("encryption key ids must be unique")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self.primary_id = keys[0][0]

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def encrypt(self, plaintext: bytes, binding: RowBinding) -> tuple[bytes, str]:
        """Returns (ciphertext, key id). The ciphertext carries its nonce."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.primary_id].encrypt(nonce, plaintext, binding.associated_data())
        return FORMAT_VERSION + nonce + sealed, self.primary_id

    def decrypt(self, ciphertext: bytes, key_id: str, binding: RowBinding) -> bytes:
        aead = self._keys.get(key_id)
        where = f"{binding.table} row {binding.row_id} ({binding.field})"
        if aead is None:
            raise DecryptionError(
                f"cannot decrypt {where}: it was encrypted with key {key_id!r}, which is not configured "
                "(add it back to MCP_HUB_ENCRYPTION_KEYS or the key file)"
            )
        if len(ciphertext) < 1 + NONCE_BYTES or ciphertext[:1] != FORMAT_VERSION:
            raise DecryptionError(f"cannot decrypt {where}: not a ciphertext this hub wrote")
        nonce, sealed = ciphertext[1 : 1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, binding.associated_data())
        except InvalidTag:
            raise DecryptionError(
                f"cannot decrypt {where}: the ciphertext does not belong to this row or key {key_id!r} is wrong"
            ) from None

    def encrypt_json(self, value: object, binding: RowBinding) -> tuple[bytes, str]:
        return self.encrypt(json.dumps(value, separators=(",", ":")).encode(), binding)

    def decrypt_json(self, ciphertext: bytes, key_id: str, binding: RowBinding) -> object:
        return json.loads(self.decrypt(ciphertext, key_id, binding))


def generate_key_entry() -> str:
    """A new 'key_id:base64key' entry."""
    key_id = "k" + secrets.token_hex(4)
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()}"


def parse_key_list(text: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for raw in text.replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id or not encoded:
            raise ConfigError("each encryption key must be written 'key_id:base64key'")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ConfigError(f"encryption key {key_id!r} is not valid base64") from None
        keys.append((key_id.strip(), key))
    return keys


def load_keyring(configured: str | None, key_file: Path) -> Keyring:
    """Keys from the setting if given, else from the key file, which is generated (0600) on first use."""
    if configured:
        return Keyring(parse_key_list(configured))
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key_entry() + "\n")
        log.warning(
            "generated a new encryption key in %s (keep it safe: without it secrets are lost)", key_file
        )
    return Keyring(parse_key_list(key_file.read_text()))


def prepend_key_to_file(key_file: Path) -> str:
    """Puts a fresh key in front of the key file's list (it then encrypts); returns its id."""
    entry = generate_key_entry()
    existing = key_file.read_text() if key_file.exists() else ""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(entry + "\n" + existing)
    tmp.replace(key_file)
    return entry.split(":", 1)[0]


def secret_hash(value: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (API key, token, client secret, state), as stored
    for lookup. A fast hash is enough: the values have 256 bits of entropy (nothing to brute-force)."""
    return hashlib.sha256(value.encode()).hexdigest()
