"""Reading a line-oriented log (queue_log, Master.csv) from a position, optionally following it.

Survives logrotate both ways:
- by rename (`create`): the path gets a new inode; the old file is read to its end first (it is
  still open), then the new one from its start;
- by `copytruncate`: the same inode shrinks below our offset; reading restarts at its start.
A resumed run whose file was rotated meanwhile first reads the rest of the rotated file
(`PATH.1`, or any `PATH.*` with the checkpoint's inode). Only whole lines are handed on; a
partial last line waits for its newline (or, when not following, is read at the end).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from stream.adapters.io.source import IDLE, Item

CHUNK = 1 << 16


class FileTail:
    def __init__(self, path: str | Path, *, follow: bool, position: dict[str, Any] | None = None,
                 poll_s: float = 0.2, progress: bool = False) -> None:
        self.path = Path(path)
        self.follow, self.poll_s = follow, poll_s
        self.position = dict(position or {})
        self.progress = progress and not follow
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def _open_at_checkpoint(self) -> tuple[BinaryIO | None, int]:
        """The file (and offset) the checkpoint points into, if it still exists."""
        inode, offset = self.position.get("inode"), int(self.position.get("offset", 0))
        if inode is None:
            return None, 0
        candidates = [self.path, *sorted(self.path.parent.glob(self.path.name + ".*"))]
        for c in candidates:
            if c.suffix in (".gz", ".bz2", ".xz", ".zst", ".tmp"):
                continue
            try:
                st = c.stat()
            except OSError:
                continue
            if st.st_ino == inode:
                f = open(c, "rb")
                if os.fstat(f.fileno()).st_size < offset:  # truncated meanwhile (copytruncate)
                    offset = 0
                f.seek(offset)
                return f, offset
        return None, 0

    def __iter__(self) -> Iterator[Item | object]:
        f, offset = self._open_at_checkpoint()
        if f is None:
            f, offset = self._wait_open(), 0
            if f is None:
                return
        buf = b""
        total = os.fstat(f.fileno()).st_size
        shown = 0.0
        while not self._stop:
            chunk = f.read(CHUNK)
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                inode = os.fstat(f.fileno()).st_ino
                for line in lines:
                    offset += len(line) + 1
                    if line.strip():
                        yield Item(line, None, {"inode": inode, "offset": offset,
                                                "path": str(self.path)})
                if self.progress and time.monotonic() - shown > 0.5:
                    shown = time.monotonic()
                    _bar(offset + len(buf), total)
                continue
            # at the end of what is there
            st_path = _stat(self.path)
            st_f = os.fstat(f.fileno())
            if st_f.st_size < offset + len(buf):  # copytruncate: start again at the top
                f.seek(0)
                offset, buf = 0, b""
                continue
            if st_path is not None and st_path.st_ino != st_f.st_ino:
                # renamed away and a new file created: the old one is finished
                if buf.strip():
                    offset += len(buf)
                    yield Item(buf, None, {"inode": st_f.st_ino, "offset": offset,
                                           "path": str(self.path)})
                buf = b""
                f.close()
                f, offset = open(self.path, "rb"), 0
                continue
            if not self.follow:
                if buf.strip():
                    offset += len(buf)
                    yield Item(buf, None, {"inode": st_f.st_ino, "offset": offset,
                                           "path": str(self.path)})
                if self.progress:
                    _bar(total, total, end=True)
                break
            yield IDLE
            time.sleep(self.poll_s)
        f.close()

    def _wait_open(self) -> BinaryIO | None:
        while not self._stop:
            try:
                return open(self.path, "rb")
            except FileNotFoundError:
                if not self.follow:
                    raise
            time.sleep(self.poll_s)  # following a file that is not there yet
        return None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _bar(done: int, total: int, end: bool = False) -> None:
    width = 30
    frac = done / total if total else 1.0
    filled = int(width * min(frac, 1.0))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f} % "
                     f"of {total:,} bytes")
    if end:
        sys.stderr.write("\n")
    sys.stderr.flush()
