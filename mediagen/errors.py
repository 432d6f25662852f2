"""Errors that mediagen raises; each message names the problem and the fix."""


class MediagenError(Exception):
    """Base class for every error mediagen raises on purpose."""


class RequestError(MediagenError, ValueError):
    """A request is malformed or its inputs cannot be used."""


class UnsupportedError(RequestError):
    """A request asks for a mode or option the chosen model does not support."""


class ModelNotFoundError(MediagenError, LookupError):
    """A model id names nothing installed, known, or reachable."""


class UnsafeWeightsError(MediagenError):
    """A weights file is not safetensors (e.g. a pickle checkpoint) and is refused."""


class Cancelled(MediagenError):
    """A generation was stopped between steps (Ctrl-C, a cancel request)."""
