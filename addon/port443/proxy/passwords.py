"""The dashboard password: scrypt-hashed in a file of port443's data directory, readable by its owner only.

Only the hash is ever written (`scrypt$N$r$p$salt$hash`, RFC 7914 with a random 16-byte salt), mode 0600,
atomically; the proxy re-reads the file when it changes, so `port443 dashboard password` takes effect on
a running proxy. Verifying costs tens of milliseconds and MiBs by design: callers run it off the event
loop, one at a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from port443.errors import Port443Error, UsageError

MIN_LENGTH = 8
MAX_LENGTH = 1024
"""Characters of a password at most: scrypt's cost grows with it, and a sign-in form is bounded."""
N, R, P = 2**15, 8, 1
"""scrypt's cost: 32 MiB and some 50 ms per try (OWASP's minimum is N=2^17 with r=8 at 128 MiB; a small
gateway box should still answer a sign-in in well under a second)."""
_MAX_MEMORY, _MAX_P = 256 * 2**20, 4
"""Bounds on the cost a stored hash may ask for (a damaged or hostile file must not exhaust memory)."""


def default_password_path() -> Path:
    """`dashboard-password` in port443's data directory (beside the store and the WireGuard keys)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("port443")) / "dashboard-password"


def check_password(password: str) -> None:
    """A password a person may choose.

    Raises:
        UsageError: too short or too long.
    """
    if len(password) < MIN_LENGTH:
        raise UsageError(f"the password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UsageError(f"the password may have at most {MAX_LENGTH} characters")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * r * (n + p) + 2**20, dklen=32
    )


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """The stored form of `password`: `scrypt$N$r$p$salt$hash` (base64)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


@dataclass(frozen=True, slots=True)
class StoredHash:
    """A parsed `scrypt$...` line."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def parse_hash(text: str) -> StoredHash:
    """Read a stored hash.

    Raises:
        ValueError: not one written by `hash_password`, or asking for more cost than allowed.
    """
    parts = text.strip().split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not a scrypt$N$r$p$salt$hash line")
    n, r, p = (int(x) for x in parts[1:4])
    # scrypt needs 128 * N * r bytes (RFC 7914 section 6); N a power of two above 1.
    if not (1 < n and n & (n - 1) == 0 and 0 < r and 128 * n * r <= _MAX_MEMORY and 0 < p <= _MAX_P):
        raise ValueError(f"scrypt parameters out of bounds (N={n}, r={r}, p={p})")
    salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    if len(salt) < 8 or len(digest) != 32:
        raise ValueError("salt or hash of the wrong length")
    return StoredHash(n, r, p, salt, digest)


def verify_password(password: str, stored: StoredHash) -> bool:
    """Whether `password` is the one `stored` was made from (constant-time comparison)."""
    if len(password) > MAX_LENGTH:
        return False
    return hmac.compare_digest(_scrypt(password, stored.salt, stored.n, stored.r, stored.p), stored.digest)


def write_password(path: Path, password: str) -> None:
    """Hash `password` and write it to `path`, mode 0600, atomically.

    When root writes into a directory owned by someone else (a service's own user), the file is given to
    that owner, so the service can read it.

    Raises:
        UsageError: the password is too short or too long.
        Port443Error: the file cannot be written.
    """
    check_password(password)
    line = hash_password(password) + "\n"
    temp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(line)
        os.chmod(temp, 0o600)  # an older temp file may have had another mode
        st = path.parent.stat()
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            os.chown(temp, st.st_uid, st.st_gid)
        os.replace(temp, path)
    except OSError as e:
        raise Port443Error(f"{path}: cannot write the dashboard password ({e.strerror})") from e


def remove_password(path: Path) -> bool:
    """Delete the password file; returns whether there was one.

    Raises:
        Port443Error: it exists but cannot be removed.
    """
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise Port443Error(f"{path}: cannot remove the dashboard password ({e.strerror})") from e
    return True


class PasswordFile:
    """The password file as the running proxy sees it: re-read only when it changed (by its stat)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._hash: StoredHash | None = None
        self.generation = 0
        """Goes up whenever the password changes or goes: sessions made before are no longer valid."""
        self.problem = ""
        """Why the file could not be used ('' when fine or absent)."""

    def current(self) -> StoredHash | None:
        """The stored hash, or None when no usable password is set (then nobody can sign in)."""
        try:
            st = self.path.stat()
        except OSError:
            stamp = None
        else:
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._stamp, self._hash, self.problem = stamp, None, ""
            self.generation += 1
            if stamp is not None:
                self._load()
        return self._hash

    def _load(self) -> None:
        try:
            self._hash = parse_hash(self.path.read_text(encoding="ascii")[:4096])
        except (OSError, UnicodeError, ValueError) as e:  # unreadable or damaged: treated as no password
            self.problem = f"{self.path}: cannot use the dashboard password file ({e})"
