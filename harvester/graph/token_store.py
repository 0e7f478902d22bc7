"""Token files: a file holding only the token, and beside it what we know of the token's age.

An Instagram Login token lives 60 days and Meta refreshes it only once it is at least 24 hours
old, so `harvester token refresh` must know when each token was issued and when it expires. Meta
says neither on a call made with the token, so they are kept in a small sidecar JSON written
with every token we write: `<token_file>.json` = `{"refreshed_at": ISO, "expires_at": ISO}`.
Without a sidecar (a token put there by hand) the file's mtime stands for the refresh time and
the expiry is unknown; the first refresh writes one.

A token is written atomically with mode 0600: a temporary file in the same folder (created
0600), written, fsynced, then `os.replace`d over the old one, so a reader sees the old token
or the new one, never a mix, and a failed refresh leaves the old file byte-identical.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from harvester.models import Account, Secret

# Meta refreshes an Instagram User token only when it is at least this old.
REFRESH_MIN_AGE = timedelta(hours=24)
# A run warns about a token that expires sooner than this.
EXPIRY_WARNING = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """When a token file's token was issued (refreshed) and, if known, when it expires."""

    refreshed_at: datetime
    expires_at: datetime | None
    from_sidecar: bool  # False: refreshed_at is the file's mtime, expires_at unknown


def sidecar_path(token_file: str | Path) -> Path:
    path = Path(token_file)
    return path.with_name(path.name + ".json")


def read_record(token_file: str | Path) -> TokenRecord | None:
    """What is known of the token in `token_file`; None when the file is gone."""
    try:
        raw = orjson.loads(sidecar_path(token_file).read_bytes())
        refreshed = datetime.fromisoformat(raw["refreshed_at"])
        expires = raw.get("expires_at")
        return TokenRecord(
            refreshed.astimezone(UTC),
            None if expires is None else datetime.fromisoformat(expires).astimezone(UTC),
            True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no sidecar, or one we cannot read: fall back on the token file itself
    try:
        mtime = Path(token_file).stat().st_mtime
    except OSError:
        return None
    return TokenRecord(datetime.fromtimestamp(mtime, UTC), None, False)


def write_token(token_file: str | Path, token: Secret, record: TokenRecord) -> None:
    """Replace the token in `token_file` (mode 0600), then its sidecar, each atomically."""
    path = Path(token_file)
    _replace(path, token.reveal().encode() + b"\n")
    body = {
        "refreshed_at": record.refreshed_at.astimezone(UTC).isoformat(),
        "expires_at": None if record.expires_at is None else record.expires_at.isoformat(),
    }
    _replace(sidecar_path(path), orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")


def _replace(path: Path, data: bytes) -> None:
    # mkstemp creates the file 0600 in the target's folder: same filesystem, so os.replace is
    # an atomic rename, and the token is never readable by others, not even for a moment.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    # The rename itself is durable only once the folder is synced.
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def expiring(
    accounts: Sequence[Account], now: datetime, within: timedelta = EXPIRY_WARNING
) -> list[tuple[Account, datetime]]:
    """Instagram Login accounts whose token file's token expires within `within` of `now`
    (expired ones included), with the expiry: what a run warns about."""
    found = []
    for account in accounts:
        if account.login != "instagram" or account.token_file is None:
            continue
        record = read_record(account.token_file)
        expires_at = None if record is None else record.expires_at
        if expires_at is not None and expires_at - now < within:
            found.append((account, expires_at))
    return found


__all__ = [
    "EXPIRY_WARNING",
    "REFRESH_MIN_AGE",
    "TokenRecord",
    "expiring",
    "read_record",
    "sidecar_path",
    "write_token",
]
