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


def ranges(pid: int) -> list[Mapping]:
    """Every mapping of ``pid`` from /proc/PID/maps: addresses, permissions and path, no flags (fast)."""
    out: list[Mapping] = []
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append(Mapping(start, end, parts[1], parts[5].strip() if len(parts) > 5 else ""))
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


def _resident_runs(pagemap: BinaryIO, m: Mapping) -> list[tuple[int, int]]:
    """(start, end) runs of ``m``'s pages that are in RAM or swap; never-touched pages hold only zeros."""
    page = 4096
    pagemap.seek(m.start // page * 8)
    entries = pagemap.read(m.size // page * 8)
    runs: list[tuple[int, int]] = []
    for i in range(len(entries) // 8):
        if entries[8 * i + 7] & 0xC0:  # bit 63 present, bit 62 swapped
            addr = m.start + i * page
            if runs and runs[-1][1] == addr:
                runs[-1] = (runs[-1][0], addr + page)
            else:
                runs.append((addr, addr + page))
    return runs


def find(
    pid: int, needle: bytes, exclude: list[tuple[int, int]] | None = None, *, resident_only: bool = False
) -> list[int]:
    """Addresses of every copy of ``needle`` in ``pid``'s memory outside ``exclude``.

    ``exclude`` lists (address, length) spans, such as the secret's own pages.
    Unreadable mappings are skipped. ``resident_only`` reads only pages that
    were ever touched (per /proc/PID/pagemap; the others read as zeros) and
    skips read-only file mappings (program text and constants): much faster
    in a large process, and as thorough for a needle that is not in any file.
    """
    if not needle:
        raise ValueError("empty needle")
    spans = exclude or []
    hits: list[int] = []
    # A copy may run into untouched pages (zeros) only as far as the needle's own zero bytes reach.
    lead = bytes(len(needle) - len(needle.lstrip(b"\0")))
    trail = bytes(len(needle) - len(needle.rstrip(b"\0")))
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as f, open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pm:
        for m in ranges(pid):
            if m.path in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                continue
            if not resident_only:
                pieces = [(m.start, _read_all(f, m))]
            elif m.path.startswith("/") and "w" not in m.perms:
                continue
            else:
                pieces = []
                for start, end in _resident_runs(pm, m):
                    data = _read_all(f, Mapping(start, end, m.perms, m.path))
                    pieces.append((start - len(lead), lead + data + trail if lead or trail else data))
            for base, data in pieces:
                i = data.find(needle)
                while i >= 0:
                    addr = base + i
                    if not any(s <= addr < s + n for s, n in spans):
                        hits.append(addr)
                    i = data.find(needle, i + 1)
    return hits
