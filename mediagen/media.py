"""Reading and writing media: images, clips and sound in, files with their recipe embedded out.

Formats are sniffed from content, never trusted from a file name. Every write goes to a temporary
file in the target folder and is moved into place with os.replace, so a failed write never leaves a
half-written or clobbered output behind.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
import urllib.parse
import warnings
import wave
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from mediagen.errors import RequestError

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
IMAGE_SUFFIXES = MappingProxyType({".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"})
VIDEO_SUFFIXES = (".mp4", ".webm", ".gif")
DEFAULT_MAX_PIXELS = 64_000_000
_EXIF_DESCRIPTION = 0x010E  # IFD0 ImageDescription: the recipe JSON (ASCII)
_EXIF_IFD = 0x8769
_EXIF_USER_COMMENT = 0x9286  # where A1111 keeps its parameters in JPEG/WebP
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


# -- sources -------------------------------------------------------------------------------------
def _read_source(src: str | os.PathLike | bytes, what: str) -> tuple[bytes, str]:
    """The bytes of a path, data: URI or bytes, and a name for messages."""
    handle, name = _open_source(src, what)
    if isinstance(handle, bytes):
        return handle, name
    try:
        return handle.read_bytes(), name
    except OSError as e:
        raise RequestError(f"cannot read the {what} file {name}: {e.strerror or e}") from None


def _open_source(src: str | os.PathLike | bytes, what: str) -> tuple[bytes | Path, str]:
    """A checked path (left unread) or the decoded bytes of a data: URI, and a name for messages."""
    if isinstance(src, (bytes, bytearray)):
        return bytes(src), f"{what} bytes"
    text = str(src)
    if text.startswith("data:"):
        head, sep, payload = text.partition(",")
        if not sep:
            raise RequestError(f"malformed data: URI for the {what}: expected 'data:<type>;base64,<data>'")
        try:
            data = base64.b64decode(payload, validate=False) if head.endswith(";base64") else \
                urllib.parse.unquote_to_bytes(payload)
        except ValueError as e:
            raise RequestError(f"the {what} data: URI is not valid base64 ({e})") from None
        return data, f"{what} data: URI"
    if text.startswith(("http://", "https://")):
        raise RequestError(f"the {what} {text} is a URL, which is not downloaded: save it and pass the file path")
    path = Path(text).expanduser()
    if not path.exists():
        raise RequestError(f"the {what} file {text} does not exist: check the path")
    if not path.is_file():
        raise RequestError(f"the {what} {text} is not a file (a folder?): give the path of a file")
    return path, text


def _head(handle: bytes | Path, name: str, n: int = 16) -> bytes:
    """The first bytes of a source, for sniffing."""
    if isinstance(handle, bytes):
        return handle[:n]
    try:
        with open(handle, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise RequestError(f"cannot read {name}: {e.strerror or e}") from None


def _av_input(handle: bytes | Path) -> Any:
    """What av.open reads: a file path, or a buffer over in-memory bytes."""
    return str(handle) if isinstance(handle, Path) else io.BytesIO(handle)


def _sniff(data: bytes) -> str | None:
    """The container/image format from magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[4:8] == b"ftyp":
        return "MP4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "WEBM"
    return None


# -- images --------------------------------------------------------------------------------------
def _array_to_image(arr: np.ndarray) -> Image.Image:
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise RequestError(
            f"an image array must be uint8 (0-255); got {arr.dtype}: convert it, e.g. (x * 255).round().astype('uint8')"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(arr))
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(arr))
    raise RequestError(f"an image array must be HxW, HxWx3 or HxWx4; got shape {tuple(arr.shape)}")


def _normalise_mode(im: Image.Image, mode: str | None) -> Image.Image:
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode is not None and mode != im.mode and im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.float64)  # 16-bit grey: scale, as a plain convert would clip at 255
        scale = 257.0 if (im.mode != "I" or arr.max() > 255) else 1.0
        im = Image.fromarray(np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8))
    if mode is not None and im.mode != mode:
        im = im.convert(mode)
    return im


def load_image(src: Any, *, mode: str | None = "RGB", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Load a PNG/JPEG/WebP (path, data: URI or bytes), a PIL image or a uint8 array as `mode` (None keeps it)."""
    if isinstance(src, Image.Image):
        return _normalise_mode(src, mode)
    if isinstance(src, np.ndarray) or type(src).__name__ == "Tensor":
        return _normalise_mode(_array_to_image(np.asarray(src)), mode)
    if not isinstance(src, (str, os.PathLike, bytes, bytearray)):
        raise RequestError(
            f"cannot load an image from a {type(src).__name__}: give a file path, a PIL image or an array"
        )
    data, name = _read_source(src, "image")
    try:
        im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise RequestError(f"{name} is far too large to decode safely (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError):
        found = _sniff(data)
        what = f"a {found} file" if found else "not an image in a supported format"
        raise RequestError(f"{name} is {what}: supported image formats are PNG, JPEG and WebP") from None
    w, h = im.size
    if w * h > max_pixels:
        raise RequestError(
            f"{name} is {w}x{h} = {w * h / 1e6:.1f} MP, over the {max_pixels / 1e6:g} MP limit: "
            "downscale it, or raise max_pixels if it is trusted"
        )
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError) as e:
        raise RequestError(f"{name} is a damaged {im.format} image ({e}): re-export it") from None
    return _normalise_mode(im, mode)


# -- clips ---------------------------------------------------------------------------------------
def load_video(
    src: Any,
    max_frames: int | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    default_fps: float = 24.0,
) -> tuple[list[Image.Image], float]:
    """Decode an MP4/WebM/MOV/GIF/animated WebP (path or data: URI) or a frame list into RGB frames and fps."""
    if max_frames is not None and max_frames < 1:
        raise RequestError(f"max_frames must be at least 1, got {max_frames}")
    if isinstance(src, (list, tuple)) or (isinstance(src, np.ndarray) and src.ndim == 4):
        frames = [load_image(f, max_pixels=max_pixels) for f in list(src)[:max_frames]]
        if not frames:
            raise RequestError("the video has no frames: give at least one frame")
        _check_same_size(frames)
        return frames, float(default_fps)
    if not isinstance(src, (str, os.PathLike, bytes, bytearray)):
        raise RequestError(f"cannot load a video from a {type(src).__name__}: give a file path or a list of frames")
    handle, name = _open_source(src, "video")
    kind = _sniff(_head(handle, name))
    if kind in ("GIF", "WEBP"):
        data = handle if isinstance(handle, bytes) else _read_source(handle, "video")[0]
        return _load_animated(data, name, max_frames, max_pixels, default_fps)
    if kind in ("PNG", "JPEG"):
        raise RequestError(f"{name} is a still {kind} image, not a video: pass it as --image")
    import av

    frames: list[Image.Image] = []
    try:
        with av.open(_av_input(handle), mode="r") as container:
            if not container.streams.video:
                raise RequestError(f"{name} has no video stream: give a clip (MP4, WebM, MOV or GIF)")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > max_pixels:
                raise RequestError(f"{name} frames are {w}x{h}, over the {max_pixels / 1e6:g} MP limit: downscale it")
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else float(default_fps)
            for frame in container.decode(stream):
                frames.append(frame.to_image())
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as e:
        raise RequestError(f"{name} is not a readable video ({e}): supported are MP4, WebM, MOV and GIF") from None
    if not frames:
        raise RequestError(f"{name} has a video stream but no decodable frames: re-export it")
    return frames, fps


def _load_animated(
    data: bytes, name: str, max_frames: int | None, max_pixels: int, default_fps: float
) -> tuple[list[Image.Image], float]:
    try:
        im = Image.open(io.BytesIO(data), formats=("GIF", "WEBP"))
    except (OSError, Image.DecompressionBombError) as e:
        raise RequestError(f"{name} is not a readable GIF/WebP animation ({e})") from None
    if im.size[0] * im.size[1] > max_pixels:
        raise RequestError(f"{name} frames are {im.size[0]}x{im.size[1]}, over the {max_pixels / 1e6:g} MP limit")
    frames, durations = [], []
    for frame in ImageSequence.Iterator(im):
        frames.append(frame.convert("RGB"))
        durations.append(frame.info.get("duration") or 0)
        if max_frames is not None and len(frames) >= max_frames:
            break
    positive = [d for d in durations if d > 0]
    fps = 1000.0 / float(np.median(positive)) if positive else float(default_fps)
    return frames, fps


def _check_same_size(frames: Sequence[Image.Image]) -> None:
    size = frames[0].size
    for i, f in enumerate(frames):
        if f.size != size:
            raise RequestError(f"frame {i} is {f.size[0]}x{f.size[1]} but frame 0 is {size[0]}x{size[1]}: "
                               "all frames of a clip must have one size")


# -- sound ---------------------------------------------------------------------------------------
def load_audio(src: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Load sound as mono float32 in [-1, 1] and its sample rate (WAV natively, other formats via PyAV)."""
    handle, name = _open_source(src, "audio")
    if _sniff(_head(handle, name)) == "WAV":
        data = handle if isinstance(handle, bytes) else _read_source(handle, "audio")[0]
        try:
            return _load_wav(data)
        except (wave.Error, EOFError):
            pass  # e.g. IEEE-float WAV, which `wave` does not read: FFmpeg does
    return _load_audio_av(handle, name)


def _load_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data), "rb") as wf:
        channels, width, rate = wf.getnchannels(), wf.getsampwidth(), wf.getframerate()
        raw = wf.readframes(wf.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise wave.Error(f"unsupported sample width {width}")
    x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)  # (samples,)
    return np.ascontiguousarray(x, dtype=np.float32), int(rate)


def _load_audio_av(handle: bytes | Path, name: str) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    length = None
    try:
        with av.open(_av_input(handle), mode="r") as container:
            if not container.streams.audio:
                raise RequestError(f"{name} has no audio: give a WAV file (or a clip with a sound track)")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
            if stream.duration and stream.time_base:  # drop the encoder's padding of the last frame
                length = round(float(stream.duration * stream.time_base) * rate)
    except av.error.FFmpegError as e:
        raise RequestError(f"{name} is not readable audio ({e}): give a WAV file") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if length is not None:
        samples = samples[:length]
    return samples, int(rate)


def save_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float samples as a 16-bit PCM WAV, atomically."""
    x = _mono_samples(samples)
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")

    def write(tmp: str) -> None:
        with wave.open(tmp, "wb") as wf:
            wf.setnchannels(1)
            wf.setsampwidth(2)
            wf.setframerate(int(sample_rate))
            wf.writeframes(pcm.tobytes())

    return atomic_write(Path(path), write)


def _mono_samples(samples: Any) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise RequestError(f"audio must be mono samples of shape (n,); got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise RequestError("audio contains NaN or infinite samples")
    return x


# -- atomic writes -------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp) on a temporary file next to `path`, fsync it, move it into place, fsync the folder.

    A failure at any point leaves an existing file at `path` untouched and no temporary file behind.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise RequestError(f"the output {path} is a folder: give a file name, e.g. {path / 'out.png'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, (path.stat().st_mode & 0o777) if path.exists() else 0o644)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _to_pil(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    return _array_to_image(np.asarray(image))


def _recipe_json(recipe: dict, ascii_only: bool = False) -> str:
    try:
        return json.dumps(recipe, ensure_ascii=ascii_only, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise RequestError(f"the recipe is not JSON-serialisable ({e})") from None


# -- writing images ------------------------------------------------------------------------------
def save_image(path: str | os.PathLike, image: Any, recipe: dict | None = None) -> Path:
    """Write a PNG (or JPEG/WebP by suffix) atomically with the recipe and A1111 parameters embedded."""
    from mediagen.recipe import a1111_parameters

    path = Path(path)
    fmt = IMAGE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise RequestError(f"cannot write {path}: image outputs end in .png, .jpg, .jpeg or .webp")
    im = _to_pil(image)
    params = a1111_parameters(recipe, size=im.size) if recipe is not None else None
    blob = _recipe_json(recipe, ascii_only=fmt != "PNG") if recipe is not None else None

    def write(tmp: str) -> None:
        if fmt == "PNG":
            keep = im.mode in ("RGB", "RGBA", "L", "LA", "I;16")
            out = im if keep else im.convert("RGBA" if "A" in im.mode else "RGB")
            info = PngInfo()
            if recipe is not None:
                info.add_text("parameters", params)
                info.add_text("mediagen", blob, zip=True)
            out.save(tmp, format="PNG", pnginfo=info, compress_level=6)
            return
        limit = 65500 if fmt == "JPEG" else 16383
        if max(im.size) > limit:
            raise RequestError(f"{fmt} images are at most {limit} pixels a side; {im.size[0]}x{im.size[1]} is "
                               f"larger: save as .png")
        out = im.convert("RGB") if fmt == "JPEG" or im.mode not in ("RGB", "RGBA") else im
        kwargs: dict[str, Any] = {"quality": 95}
        if recipe is not None:
            kwargs["exif"] = _exif_recipe(params, blob, fmt)
        out.save(tmp, format=fmt, **kwargs)

    return atomic_write(path, write)


def _exif_recipe(params: str, blob: str, fmt: str) -> bytes:
    """EXIF with the A1111 text in UserComment (as A1111 writes it) and the recipe JSON in ImageDescription."""
    exif = Image.Exif()
    exif[_EXIF_DESCRIPTION] = blob
    exif.get_ifd(_EXIF_IFD)[_EXIF_USER_COMMENT] = b"UNICODE\x00" + params.encode("utf-16-be")
    data = exif.tobytes()
    if fmt == "JPEG" and len(data) > 65000:  # one JPEG APP1 segment holds at most 64 KB
        warnings.warn("the recipe is too long for JPEG EXIF; only the A1111 parameters are embedded: "
                      "save as .png to keep the full recipe", stacklevel=3)
        del exif[_EXIF_DESCRIPTION]
        data = exif.tobytes()
    return data


# -- writing clips -------------------------------------------------------------------------------
def _frames_rgb(frames: Sequence[Any]) -> list[np.ndarray]:
    if frames is None or len(frames) == 0:
        raise RequestError("a video needs at least one frame")
    arrs = [np.asarray(_to_pil(f).convert("RGB")) for f in frames]
    h, w = arrs[0].shape[:2]
    for i, a in enumerate(arrs):
        if a.shape[:2] != (h, w):
            raise RequestError(f"frame {i} is {a.shape[1]}x{a.shape[0]} but frame 0 is {w}x{h}: "
                               "all frames of a clip must have one size")
    return arrs


def _even(arr: np.ndarray) -> np.ndarray:
    """Pad an odd width/height by repeating the last column/row (4:2:0 video needs even sizes)."""
    h, w = arr.shape[:2]
    return np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if (h % 2 or w % 2) else arr


def save_video(
    path: str | os.PathLike,
    frames: Sequence[Any],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    recipe: dict | None = None,
) -> Path:
    """Write an MP4 (H.264 + AAC), WebM (VP9 + Opus) or GIF atomically, the recipe in its metadata."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise RequestError(f"cannot write {path}: video outputs end in {', '.join(VIDEO_SUFFIXES)}")
    if fps is None or not (0 < float(fps) <= 240):
        raise RequestError(f"fps must be in (0, 240], got {fps}")
    if audio is not None:
        audio = _mono_samples(audio)
        if not sample_rate or sample_rate <= 0:
            raise RequestError("audio needs its sample_rate (e.g. 16000)")
        if suffix == ".gif":
            raise RequestError("a GIF cannot carry sound: save as .mp4 or .webm")
    arrs = _frames_rgb(frames)
    blob = _recipe_json(recipe) if recipe is not None else None
    if suffix == ".gif":
        return atomic_write(path, lambda tmp: _write_gif(tmp, arrs, float(fps), blob))
    if suffix == ".mp4":
        codec, acodec, rates = "libx264", "aac", _AAC_RATES
    else:
        codec, acodec, rates = "libvpx-vp9", "libopus", _OPUS_RATES
    fmt = "mp4" if suffix == ".mp4" else "webm"

    def write(tmp: str) -> None:
        _write_av(tmp, fmt, codec, arrs, float(fps), blob, acodec, rates, audio, sample_rate)

    return atomic_write(path, write)


def _write_gif(tmp: str, arrs: list[np.ndarray], fps: float, blob: str | None) -> None:
    images = [Image.fromarray(a) for a in arrs]
    kwargs: dict[str, Any] = {"save_all": True, "append_images": images[1:], "loop": 0,
                              "duration": max(20, round(1000.0 / fps)), "disposal": 1}
    if blob is not None:
        kwargs["comment"] = blob.encode("utf-8")
    images[0].save(tmp, format="GIF", **kwargs)


def _write_av(tmp: str, fmt: str, codec: str, arrs: list[np.ndarray], fps: float, blob: str | None,
              acodec: str, rates: tuple[int, ...], audio: np.ndarray | None, sample_rate: int | None) -> None:
    import av

    rate = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if fmt == "mp4" else {}
    with av.open(tmp, mode="w", format=fmt, options=options) as container:
        if blob is not None:
            container.metadata["comment"] = blob
        first = _even(arrs[0])
        vs = container.add_stream(codec, rate=rate)
        vs.width, vs.height = first.shape[1], first.shape[0]
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "18"} if codec == "libx264" else {"crf": "30", "b": "0", "row-mt": "1", "deadline": "good"}
        astream = None
        if audio is not None:
            # the codec's own rate, else the nearest one above (resampled on the way in)
            out_rate = sample_rate if sample_rate in rates else \
                min(rates, key=lambda r: (r < sample_rate, abs(r - sample_rate)))
            astream = container.add_stream(acodec, rate=out_rate)
            astream.layout = "mono"
        for i, a in enumerate(arrs):
            frame = av.VideoFrame.from_ndarray(_even(a), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1) / rate
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        if astream is not None:
            _encode_audio(container, astream, audio, int(sample_rate))


def _encode_audio(container: Any, stream: Any, samples: np.ndarray, sample_rate: int) -> None:
    import av

    frame_size = stream.codec_context.frame_size or 1024
    fmt = "fltp" if stream.codec_context.codec.name == "aac" else "flt"
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=stream.codec_context.sample_rate,
                                  frame_size=frame_size)
    src = av.AudioFrame.from_ndarray(np.clip(samples, -1.0, 1.0)[None, :].astype(np.float32), format="flt",
                                     layout="mono")
    src.sample_rate = sample_rate
    src.pts = 0
    src.time_base = Fraction(1, sample_rate)
    pts = 0
    for frame in [*resampler.resample(src), *resampler.resample(None)]:
        frame.pts = pts
        frame.time_base = Fraction(1, stream.codec_context.sample_rate)
        pts += frame.samples
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


# -- reading recipes -----------------------------------------------------------------------------
def read_recipe(path: str | os.PathLike) -> dict:
    """The recipe embedded in a PNG/JPEG/WebP/GIF/MP4/WebM (or one built from A1111 parameters)."""
    from mediagen.recipe import recipe_from_a1111

    handle, name = _open_source(path, "file")
    kind = _sniff(_head(handle, name))
    blob: str | None = None
    params: str | None = None
    if kind in ("PNG", "JPEG", "WEBP", "GIF"):
        try:
            blob, params = _image_recipe_text(handle, kind)
        except (OSError, Image.DecompressionBombError) as e:
            raise RequestError(f"{name} is not a readable image ({e})") from None
    else:
        import av

        try:
            with av.open(_av_input(handle), mode="r") as container:
                meta = {k.lower(): v for k, v in container.metadata.items()}
                for stream in container.streams:
                    meta.update({k.lower(): v for k, v in stream.metadata.items() if k.lower() == "comment"})
        except av.error.FFmpegError:
            raise RequestError(f"{name} is not a media file mediagen reads (PNG, JPEG, WebP, GIF, MP4, WebM)") from None
        blob = meta.get("comment")
    if blob:
        try:
            recipe = json.loads(blob)
        except json.JSONDecodeError:
            recipe = None
        if isinstance(recipe, dict) and "request" in recipe:
            return recipe
    if params:
        return recipe_from_a1111(params)
    raise RequestError(f"{name} holds no mediagen recipe: only files written by mediagen (or A1111 PNGs) carry one")


def _image_recipe_text(handle: bytes | Path, kind: str) -> tuple[str | None, str | None]:
    """(recipe JSON, A1111 parameters) stored in an image file's metadata."""
    blob = params = None
    with Image.open(io.BytesIO(handle) if isinstance(handle, bytes) else handle) as im:
        if kind == "PNG":
            if "mediagen" not in im.info and im.size[0] * im.size[1] <= DEFAULT_MAX_PIXELS:
                im.load()  # text chunks placed after the pixel data are read on load
            blob, params = im.info.get("mediagen"), im.info.get("parameters")
        elif kind == "GIF":
            comment = im.info.get("comment")
            blob = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else comment
        else:
            exif = im.getexif()
            blob = exif.get(_EXIF_DESCRIPTION)
            comment = exif.get_ifd(_EXIF_IFD).get(_EXIF_USER_COMMENT)
            if isinstance(comment, bytes) and comment.startswith(b"UNICODE\x00"):
                params = comment[8:].decode("utf-16-be", "replace")
    return blob, params


__all__ = [
    "DEFAULT_MAX_PIXELS", "IMAGE_FORMATS", "load_audio", "load_image", "load_video", "read_recipe",
    "save_audio", "save_image", "save_video",
]
