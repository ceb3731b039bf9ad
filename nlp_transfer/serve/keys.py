"""API keys: read once at start-up (a file, one key a line, or an environment variable), compared in constant time.

A key is sent as `Authorization: Bearer KEY` or `X-API-Key: KEY`. Keys are never logged or echoed; a bad file is
refused before the server starts.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from nlp_transfer.core.errors import UserError

KEYS_ENV = "NLP_TRANSFER_API_KEYS"  # comma- or newline-separated keys
MIN_KEY_LENGTH = 16  # a short key is guessable; refuse it rather than serve behind it


def read_keys(path: Path | None) -> list[bytes]:
    """The keys from --api-keys-file, else from $NLP_TRANSFER_API_KEYS; none: the API is open."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"--api-keys-file {path}: cannot be read ({type(err).__name__}); give a text file") from err
        where = f"--api-keys-file {path}"
        found = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not found:
            raise UserError(f"{where}: no keys in it; write one key a line (lines starting with # are comments)")
    else:
        where = f"${KEYS_ENV}"
        found = [key.strip() for key in os.environ.get(KEYS_ENV, "").replace("\n", ",").split(",") if key.strip()]
    for number, key in enumerate(found, start=1):
        if len(key) < MIN_KEY_LENGTH:
            raise UserError(
                f"{where}: key {number} has {len(key)} characters; use keys of at least {MIN_KEY_LENGTH} (e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
    return [key.encode("utf-8") for key in found]


def presented_key(authorization: str | None, api_key: str | None) -> bytes | None:
    """The key a request carries, from either header."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip().encode("utf-8")
    return api_key.strip().encode("utf-8") if api_key else None


def key_accepted(given: bytes | None, keys: list[bytes]) -> bool:
    """Whether `given` is one of `keys`: every key compared (hmac.compare_digest), so timing says nothing."""
    if given is None:
        return False
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    return matched
