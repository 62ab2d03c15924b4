"""Reading a lab file (the only I/O of the lab model): bytes in, a validated Lab or every
problem out. Whatever the file holds (any bytes, any size, any YAML), the answer is a Lab or
problems, never another exception."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Final

from lab.model import instance, paths, yamldoc
from lab.model.config import Lab, LabError, LocalFiles, Problem, check_lab

MAX_BYTES: Final = yamldoc.MAX_CHARS  # a lab file is a few kB; this is generous

_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
SAVE_AS_UTF8 = "save it as UTF-8 (e.g. iconv -t UTF-8 FILE > NEW)"


# what a path that is no regular file is, in the words of `ls -l`/`stat`
_KINDS = (
    (stat.S_ISDIR, "a directory", "name a lab file in it"),
    (stat.S_ISFIFO, "a FIFO (named pipe)", "name a lab file; to read a pipe, save it to a file"),
    (stat.S_ISSOCK, "a socket", "name a lab file"),
    (stat.S_ISCHR, "a character device", "name a lab file"),
    (stat.S_ISBLK, "a block device", "name a lab file"),
)


def special_file(path: Path | str, mode: int) -> Problem | None:
    """A problem when `mode` (an st_mode) is not a regular file's: a directory, a FIFO, a
    socket or a device is no lab file, and opening one can block or read forever."""
    if stat.S_ISREG(mode):
        return None
    for test, kind, fix in _KINDS:
        if test(mode):
            return Problem("<file>", str(path), f"is {kind}, not a lab file", fix)
    return Problem("<file>", str(path), "is not a regular file", "name a lab file")


def read_bounded(path: Path, limit: int = MAX_BYTES) -> bytes | Problem:
    """At most `limit` + 1 bytes of `path` (enough to know it is too big), or why not. Only a
    regular file is opened: a FIFO, a socket or a device is a problem at once (checked before
    opening, so nothing that blocks is opened, and again on the open descriptor, with
    O_NONBLOCK, in case the path changed in between)."""
    try:
        special = special_file(path, os.stat(path).st_mode)
        if special is not None:
            return special
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(path, flags)
        with open(fd, "rb", closefd=True) as f:
            special = special_file(path, os.fstat(fd).st_mode)
            if special is not None:
                return special
            return f.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Problem("<file>", str(path), f"cannot be read ({reason})")


def decode_text(data: bytes) -> str | Problem:
    """UTF-8 text (a UTF-8 byte-order mark is allowed), or what the bytes are instead."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return Problem(
                "<file>",
                message=f"is {encoding} text (it starts with a {encoding} byte-order mark); "
                "lab files are UTF-8",
                fix=SAVE_AS_UTF8,
            )
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        return Problem(
            f"line {line}",
            message="contains NUL bytes: a binary file, or UTF-16/32 text without a "
            "byte-order mark; lab files are UTF-8 text",
            fix=SAVE_AS_UTF8,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        latin = bytes([byte]).decode("latin-1")
        guess = f" ({latin!r} in Latin-1)" if latin.isprintable() else ""
        return Problem(
            f"line {line}, column {column}",
            message=f"is not UTF-8: byte 0x{byte:02X}{guess} cannot start or continue a UTF-8 "
            "character; lab files are UTF-8 text",
            fix=SAVE_AS_UTF8,
        )


def lab_from_bytes(
    data: bytes,
    source: str = "<lab>",
    host_networks: Iterable[IPv4Network] = (),
    local_files: LocalFiles | None = None,
) -> tuple[Lab | None, list[Problem]]:
    """A Lab, or every problem of these bytes as a lab file. Never raises."""
    if len(data) > MAX_BYTES:
        return None, [
            Problem(
                "<file>",
                message=f"is larger than {MAX_BYTES // (1024 * 1024)} MiB (stopped reading "
                "there): a lab file is a few kB",
                fix="is this the right file?",
            )
        ]
    text = decode_text(data)
    if isinstance(text, Problem):
        return None, [text]
    return lab_from_text(text, source, host_networks, local_files)


def lab_from_text(
    text: str,
    source: str = "<lab>",
    host_networks: Iterable[IPv4Network] = (),
    local_files: LocalFiles | None = None,
) -> tuple[Lab | None, list[Problem]]:
    """A Lab, or every problem of this text as a lab file. Never raises."""
    raw, problems = yamldoc.read_yaml(text)
    if problems and raw is None:
        return None, problems
    lab, more = check_lab(raw, source, host_networks, local_files)
    problems.extend(more)
    return (lab if not problems else None), problems


def load_lab(
    path: Path | str,
    host_networks: Iterable[IPv4Network] = (),
    local_files: LocalFiles | None = None,
) -> Lab:
    """Read, structurally parse and validate a lab file; raise LabError with all problems.
    `local_files` (lab.adapters.fetch.local_files) checks its pinned checksums against the
    files here."""
    path = Path(path)
    data = read_bounded(path)
    if isinstance(data, Problem):
        raise LabError(str(path), [data])
    lab, problems = lab_from_bytes(data, str(path), host_networks, local_files)
    if lab is None:
        raise LabError(str(path), problems)
    return lab


def load_named(
    name: str,
    host_networks: Iterable[IPv4Network] = (),
    local_files: LocalFiles | None = None,
) -> Lab:
    """A lab by its file's name or path, or an instance of one by the instance's name (its
    record under .lab/<name>/, made when it came up: lab/model/instance.py)."""
    path = paths.resolve_lab_path(name)
    record = paths.state_dir(name) / instance.RECORD
    if not path.exists() and "/" not in name and record.is_file():
        try:
            recorded = instance.parse_record(record.read_text())
        except (OSError, ValueError) as exc:
            unreadable = Problem("<file>", str(record), f"is unreadable ({exc})")
            raise LabError(str(record), [unreadable]) from None
        origin = str(recorded["source"] or recorded["definition"])
        definition = load_lab(paths.resolve_lab_path(origin), (), local_files)
        return instance.from_record(definition, recorded)
    return load_lab(path, host_networks, local_files)


def shipped_networks() -> tuple[IPv4Network, ...]:
    """The private and management ranges of every lab file under labs/ (an instance keeps off
    them: a person may bring any of those labs up)."""
    found: list[IPv4Network] = []
    for path in sorted(paths.LABS_DIR.glob("*.yaml")):
        try:
            lab = load_lab(path)
        except LabError:
            continue
        found += [lab.network.private, lab.network.management]
    return tuple(found)
