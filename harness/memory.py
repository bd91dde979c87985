"""Read another process's memory through /proc/PID/mem and /proc/PID/smaps.

Reading uses the kernel's forced access, so pages the process made PROT_NONE
are read too; memfd_secret pages answer EIO. Only the parent of a child (or
root) may read it.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    path: str
    flags: set[str] = field(default_factory=set)
    locked: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start

    def contains(self, addr: int, length: int = 1) -> bool:
        return self.start <= addr and addr + length <= self.end


def mappings(pid: int) -> list[Mapping]:
    """Every mapping of ``pid`` with its VmFlags and Locked bytes (from smaps)."""
    out: list[Mapping] = []
    with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as f:
        for line in f:
            head = line.split(None, 1)
            if "-" in head[0] and len(head) > 1 and not head[0].endswith(":"):
                parts = line.split(None, 5)
                start, end = (int(x, 16) for x in parts[0].split("-"))
                out.append(Mapping(start, end, parts[1], parts[5].strip() if len(parts) > 5 else ""))
            elif head[0] == "VmFlags:" and out:
                out[-1].flags = set(line.split()[1:])
            elif head[0] == "Locked:" and out:
                out[-1].locked = int(line.split()[1]) * 1024
    return out


def read(pid: int, addr: int, length: int) -> bytes | None:
    """``length`` bytes at ``addr`` in ``pid``, or None when unreadable (EIO, EFAULT)."""
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
            f.seek(addr)
            return f.read(length)
    except OSError as e:
        if e.errno in (errno.EIO, errno.EFAULT, errno.EPERM, errno.ENOMEM):
            return None
        raise


def read_errno(pid: int, addr: int, length: int) -> int:
    """0 when the range reads, else the errno the kernel answered (EIO for memfd_secret)."""
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
            f.seek(addr)
            f.read(length)
        return 0
    except OSError as e:
        return e.errno or -1


def _read_all(f: BinaryIO, m: Mapping) -> bytes:
    """Every readable byte of mapping ``m``; unreadable pages read as zeros.

    /proc/PID/mem stops a read at the first page it cannot read, so the
    mapping is read page by page after a short read.
    """
    try:
        f.seek(m.start)
        data = f.read(m.size)
    except OSError:
        data = b""
    if len(data) == m.size:
        return data
    page = 4096
    chunks = [data]
    pos = m.start + len(data) - len(data) % page
    chunks[0] = data[: len(data) - len(data) % page]
    while pos < m.end:
        try:
            f.seek(pos)
            chunk = f.read(page)
        except OSError:
            chunk = b""
        chunks.append(chunk.ljust(page, b"\0"))
        pos += page
    return b"".join(chunks)


def find(pid: int, needle: bytes, exclude: list[tuple[int, int]] | None = None) -> list[int]:
    """Addresses of every copy of ``needle`` in ``pid``'s memory outside ``exclude``.

    ``exclude`` lists (address, length) spans, such as the secret's own pages.
    Unreadable mappings are skipped.
    """
    if not needle:
        raise ValueError("empty needle")
    spans = exclude or []
    hits: list[int] = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
        for m in mappings(pid):
            if m.path in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                continue
            data = _read_all(f, m)
            if not data:
                continue
            i = data.find(needle)
            while i >= 0:
                addr = m.start + i
                if not any(s <= addr < s + n for s, n in spans):
                    hits.append(addr)
                i = data.find(needle, i + 1)
    return hits
