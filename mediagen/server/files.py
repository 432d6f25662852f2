"""The data directory: its layout, id and reference checks, and atomic writes that stay inside it.

Layout: `mediagen.db` (SQLite, WAL), `secret` (HMAC key), `uploads/<sha256>.png` (re-encoded inputs,
content-addressed), `jobs/<job id>/output-<i>.<ext>` and `preview.png`. No request string ever becomes a
path: job ids and upload references are matched against strict patterns, and every path is resolved and
checked to lie inside the data directory.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from mediagen.errors import RequestError

JOB_ID = re.compile(r"[0-9a-f]{32}")
UPLOAD_REF = re.compile(r"uploads/[0-9a-f]{64}\.(?:png|mp4|webm)")
MEDIA_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".webm": "video/webm", ".wav": "audio/wav",
               ".gif": "image/gif"}


class NotFound(RequestError, LookupError):
    """A job, output or upload named in a request does not exist."""


def new_job_id() -> str:
    """A fresh random job id (32 hex digits)."""
    return uuid.uuid4().hex


def check_job_id(job_id: str) -> str:
    """The id itself when it is well-formed; NotFound otherwise (never a path)."""
    if not JOB_ID.fullmatch(job_id or ""):
        raise NotFound(f"no job {job_id!r}: job ids are 32 hex digits, as returned by POST /api/jobs")
    return job_id


def is_upload_ref(value: object) -> bool:
    """True for 'uploads/<sha256>.png' (the form POST /api/uploads returns)."""
    return isinstance(value, str) and UPLOAD_REF.fullmatch(value) is not None


@dataclass(frozen=True)
class DataDir:
    """Paths inside one data directory."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> "DataDir":
        """Make the directory tree (private to the user) and return it."""
        root = Path(root).expanduser().resolve()
        for p in (root, root / "uploads", root / "jobs"):
            p.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        return cls(root)

    @property
    def db_path(self) -> Path:
        return self.root / "mediagen.db"

    @property
    def lock_path(self) -> Path:
        return self.root / "server.lock"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    def job_dir(self, job_id: str) -> Path:
        """jobs/<id> for a validated id."""
        return self.inside(self.root / "jobs" / check_job_id(job_id))

    def upload_path(self, ref: str) -> Path:
        """The file of an upload reference; NotFound when the reference is malformed or missing."""
        if not is_upload_ref(ref):
            raise NotFound(f"{ref!r} is not an upload reference: expected uploads/<sha256>.png from POST /api/uploads")
        path = self.inside(self.root / ref)
        if not path.is_file():
            raise NotFound(f"upload {ref} does not exist: upload the file again with POST /api/uploads")
        return path

    def inside(self, path: Path) -> Path:
        """`path` resolved; RequestError when it escapes the data directory (e.g. through a symlink)."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root):
            raise RequestError(f"refusing a path outside the data directory: {path}")
        return resolved

    def relative(self, path: Path) -> str:
        """A path inside the data dir as a POSIX string relative to it (what the database stores)."""
        return self.inside(path).relative_to(self.root).as_posix()

    def secret(self) -> bytes:
        """The server's HMAC key (signed URLs, session cookies), created on first use, readable by the user only."""
        path = self.root / "secret"
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return bytes.fromhex(path.read_text().strip())
        with os.fdopen(fd, "w") as f:
            f.write(key.hex())
            f.flush()
            os.fsync(f.fileno())
        return key


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write bytes durably and atomically (mediagen.media.atomic_write)."""
    from mediagen.media import atomic_write

    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def is_disk_full(e: BaseException) -> bool:
    """True for 'no space left' and 'quota exceeded' OS errors."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(used: int, quota: int, adding: int) -> OSError:
    """The OSError(ENOSPC) raised when an output would take the data dir over its quota."""
    return OSError(errno.ENOSPC, f"the data directory's quota of {quota} bytes is reached ({used} bytes of outputs "
                                 f"kept, {adding} more needed): delete old jobs or raise --disk-quota")
