"""The dashboard password: scrypt hashes only, a 0600 file written atomically, re-read when it changes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from port443.errors import UsageError
from port443.proxy.passwords import (
    PasswordFile,
    check_password,
    hash_password,
    parse_hash,
    remove_password,
    verify_password,
    write_password,
)

CHEAP = {"n": 2**4, "r": 1, "p": 1}  # the tests' own hashes need not be slow


def test_a_hash_verifies_its_password_only() -> None:
    stored = parse_hash(hash_password("correct horse", **CHEAP))
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)
    assert not verify_password("x" * 5000, stored)
    assert hash_password("same", **CHEAP) != hash_password("same", **CHEAP)  # salted


def test_the_default_cost() -> None:
    stored = parse_hash(hash_password("a good password"))
    assert (stored.n, stored.r, stored.p, len(stored.salt)) == (2**15, 8, 1, 16)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "plain text",
        "bcrypt$16$8$1$AAAA$AAAA",
        "scrypt$15$8$1$AAAAAAAAAAA=$" + "A" * 44,  # N not a power of two
        "scrypt$1048576$16$1$AAAAAAAAAAA=$" + "A" * 44,  # 2 GiB: too costly to ever run
        "scrypt$16$1$9$AAAAAAAAAAA=$" + "A" * 44,
        "scrypt$16$1$1$!!!!$" + "A" * 44,
        "scrypt$16$1$1$AAAAAAAAAAA=$AAAA",
    ],
)
def test_damaged_or_costly_hashes_are_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_hash(line)


def test_password_length() -> None:
    check_password("eight ch")
    with pytest.raises(UsageError, match="at least 8"):
        check_password("short")
    with pytest.raises(UsageError, match="at most"):
        check_password("x" * 2000)


def test_the_file_is_written_0600_and_holds_only_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "data" / "dashboard-password"
    write_password(path, "a good password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("scrypt$") and "a good password" not in text
    assert verify_password("a good password", parse_hash(text))
    assert not (tmp_path / "data" / "dashboard-password.tmp").exists()
    assert remove_password(path) and not remove_password(path)


def test_the_running_proxy_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dashboard-password"
    watched = PasswordFile(path)
    assert watched.current() is None
    first = watched.generation
    path.write_text(hash_password("first password", **CHEAP) + "\n")
    found = watched.current()
    assert found is not None and verify_password("first password", found)
    assert watched.current() is found and watched.generation == first + 1  # unchanged: not read again
    path.write_text(hash_password("second password", **CHEAP) + "\n")
    os.utime(path, ns=(1, 1))  # a new mtime, whatever the clock's resolution
    found = watched.current()
    assert found is not None and verify_password("second password", found)
    assert watched.generation == first + 2
    path.write_text("garbage\n")
    assert watched.current() is None and "cannot use the dashboard password file" in watched.problem
    path.unlink()
    assert watched.current() is None and watched.problem == ""
