"""Server settings: read once by `main`, passed to the app, the worker and the probe as one frozen value."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mediagen.errors import RequestError
from mediagen.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DEVICE_AUTO = "auto"  # settings.device until a child process (which may import torch) resolves it


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server, its worker and its probes need; serialisable to JSON for child processes."""

    data_dir: Path
    settings: Settings = field(default_factory=Settings)
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    max_queue: int = 64  # queued + running jobs; more are answered 429
    max_attempts: int = 3  # worker deaths a job may cause before it fails
    max_upload_bytes: int = 32 * 2**20  # one request body (uploads, data: URIs inside JSON)
    max_pixels: int = 4096 * 4096  # per uploaded image
    max_side: int = 8192  # per uploaded image side
    disk_quota_bytes: int | None = None  # total bytes of outputs kept in the data dir
    model_plugins: tuple[tuple[str, str], ...] = ()  # (model id, "module:function" or "file.py:function")
    worker_nice: int = 10  # the worker yields the CPU to the HTTP process
    worker_threads: int | None = None  # torch threads in the worker (None: torch's default, one per core)
    progress_interval_s: float = 0.2  # at most this often a running job's progress is written
    log_level: str = "info"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        plugins = tuple((str(i), _absolute_spec(str(s))) for i, s in self.model_plugins)
        object.__setattr__(self, "model_plugins", plugins)
        if self.max_queue < 1:
            raise RequestError(f"--max-queue must be at least 1, got {self.max_queue}")
        if self.max_attempts < 1:
            raise RequestError(f"max_attempts must be at least 1, got {self.max_attempts}")

    @property
    def default_model(self) -> str:
        return self.settings.default_model

    def check_bind(self) -> None:
        """Refuse to listen beyond loopback without a token."""
        if not is_loopback(self.host) and not self.token:
            raise RequestError(
                f"refusing to listen on {self.host} without a token: anyone on the network could use the server. "
                "Set --token (or MEDIAGEN_TOKEN), or keep the default --host 127.0.0.1"
            )

    def to_json(self) -> str:
        """JSON for a child process (the token travels too: the worker never serves requests)."""
        d = asdict(self)
        d["data_dir"] = str(self.data_dir)
        d["settings"] = {**asdict(self.settings), "home": str(self.settings.home)}
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "ServerConfig":
        """Inverse of to_json."""
        d = json.loads(text)
        s = d.pop("settings")
        s["home"] = Path(s["home"])
        d["model_plugins"] = tuple(tuple(p) for p in d.get("model_plugins", ()))
        return cls(settings=Settings(**s), **d)

    def resolved_settings(self) -> Settings:
        """The settings with an automatic device detected (call only where torch may be imported)."""
        if self.settings.device != DEVICE_AUTO:
            return self.settings
        return replace(self.settings, device=self.settings.torch_device())


def _absolute_spec(spec: str) -> str:
    """'file.py:func' with the file made absolute (the worker runs in the data dir); 'module:func' as is."""
    target, sep, func = spec.rpartition(":")
    if not sep or not target or not func:
        raise RequestError(f"model plugin {spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise RequestError(f"model plugin file {target} does not exist")
        return f"{path}:{func}"
    return spec
