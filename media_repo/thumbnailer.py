"""Thumbnails with Pillow: pure functions of (bytes, request, limits), run in a thread pool.

Methods, as the Client-Server spec describes them:

* ``scale``: keep the aspect ratio and fit the image inside ``width`` × ``height``.
* ``crop``: keep the aspect ratio, cover ``width`` × ``height`` and cut the centre
  out, so the result has exactly the requested aspect ratio.

Images are never enlarged: a source smaller than the request comes back at its
own size (cropped to the requested aspect ratio for ``crop``). The pixel count
is read from the header before anything is decoded, so decompression bombs are
refused without allocating their pixels. EXIF orientation is applied and no
metadata (EXIF, XMP, ICC, text chunks) is copied into thumbnails.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

# Types we try to thumbnail (the declared type is a hint; Pillow decides from the bytes).
THUMBNAILABLE_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/png", "image/apng", "image/gif", "image/webp", "image/bmp", "image/x-ms-bmp", "image/tiff"}
)
_ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"})

METHODS = ("crop", "scale")


class ThumbnailError(Exception):
    """The content cannot be thumbnailed (not an image, corrupt, unsupported format)."""


class ImageTooLarge(ThumbnailError):
    """The source image has more pixels than the configured limit."""


@dataclass(frozen=True)
class ThumbnailSpec:
    width: int
    height: int
    method: str

    def __str__(self) -> str:
        return f"{self.width}x{self.height}-{self.method}"


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 32_000_000
    max_frames: int = 100  # animated: more frames than this → static thumbnail
    max_animated_pixels: int = 64_000_000  # animated: sum of all frames' pixels
    jpeg_quality: int = 80


@dataclass(frozen=True)
class ThumbnailResult:
    data: bytes
    content_type: str
    width: int
    height: int
    animated: bool


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    frames: int


def parse_spec(text: str) -> ThumbnailSpec:
    """``"96x96-crop"`` → ThumbnailSpec (config format)."""
    try:
        size, method = text.strip().split("-", 1)
        w, h = size.lower().split("x", 1)
        spec = ThumbnailSpec(int(w), int(h), method)
    except ValueError:
        raise ValueError(f"bad thumbnail size {text!r}: expected WIDTHxHEIGHT-crop or WIDTHxHEIGHT-scale") from None
    if spec.method not in METHODS or spec.width <= 0 or spec.height <= 0:
        raise ValueError(f"bad thumbnail size {text!r}: expected WIDTHxHEIGHT-crop or WIDTHxHEIGHT-scale")
    return spec


def _open(data: bytes, limits: Limits) -> Image.Image:
    """Open lazily (header only) and refuse images over the pixel limit before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image is too large to thumbnail: {e}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ThumbnailError(f"not a readable image: {e}") from None
    if img.format not in _ALLOWED_FORMATS:
        raise ThumbnailError(f"unsupported image format {img.format}")
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ThumbnailError("image has no pixels")
    if w * h > limits.max_pixels:
        raise ImageTooLarge(f"image has {w}x{h} pixels, more than the limit of {limits.max_pixels}")
    return img


def probe(data: bytes, limits: Limits = Limits()) -> ImageInfo:
    img = _open(data, limits)
    frames = int(getattr(img, "n_frames", 1) or 1) if getattr(img, "is_animated", False) else 1
    return ImageInfo(img.size[0], img.size[1], str(img.format), frames)


def target_geometry(src_w: int, src_h: int, width: int, height: int, method: str) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """(crop box in source pixels, output size) for one request. Never enlarges."""
    if method == "scale":
        ratio = min(width / src_w, height / src_h, 1.0)
        out = (max(1, round(src_w * ratio)), max(1, round(src_h * ratio)))
        return (0, 0, src_w, src_h), out
    # crop: the largest centred box with the requested aspect ratio
    want = width / height
    if src_w / src_h > want:
        box_w, box_h = max(1, round(src_h * want)), src_h
    else:
        box_w, box_h = src_w, max(1, round(src_w / want))
    left, top = (src_w - box_w) // 2, (src_h - box_h) // 2
    box = (left, top, left + box_w, top + box_h)
    if box_w <= width:  # source smaller than the request: keep the box's own size
        return box, (box_w, box_h)
    return box, (width, height)


def _oriented(img: Image.Image) -> Image.Image:
    try:
        out = ImageOps.exif_transpose(img)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError):  # broken EXIF must not fail the thumbnail
        out = img
    return out if out is not None else img


def _draft(img: Image.Image, width: int, height: int, method: str) -> None:
    """Let the JPEG decoder skip detail we would throw away (DCT scaling by 1/2, 1/4, 1/8),
    keeping at least twice the output resolution for a good downscale."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError):
        orientation = 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    src_w, src_h = img.size
    box, out = target_geometry(src_w, src_h, width, height, method)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    need = (-(-src_w * 2 * out[0] // box_w), -(-src_h * 2 * out[1] // box_h))
    img.draft("RGB", need)


def _static(img: Image.Image, width: int, height: int, method: str, limits: Limits) -> ThumbnailResult:
    source_format = img.format
    if source_format in ("JPEG", "MPO"):
        _draft(img, width, height, method)
    img.load()
    img = _oriented(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    box, size = target_geometry(img.size[0], img.size[1], width, height, method)
    thumb = img.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    thumb.info = {}
    out = io.BytesIO()
    if has_alpha or source_format in ("PNG", "GIF"):
        thumb.save(out, "PNG", compress_level=4)
        ctype = "image/png"
    else:
        thumb.save(out, "JPEG", quality=limits.jpeg_quality, progressive=True)
        ctype = "image/jpeg"
    return ThumbnailResult(out.getvalue(), ctype, thumb.size[0], thumb.size[1], False)


def _animated(img: Image.Image, width: int, height: int, method: str) -> ThumbnailResult:
    box, size = target_geometry(img.size[0], img.size[1], width, height, method)
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(img):
        f = frame.convert("RGBA").resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        f.info = {}
        frames.append(f)
        durations.append(int(frame.info.get("duration", 100) or 100))
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=durations, loop=0, quality=75)
    return ThumbnailResult(out.getvalue(), "image/webp", size[0], size[1], True)


def generate(data: bytes, width: int, height: int, method: str, animated: bool = False, limits: Limits = Limits()) -> ThumbnailResult:
    """Make one thumbnail. Raises :class:`ImageTooLarge` / :class:`ThumbnailError`."""
    if method not in METHODS:
        raise ValueError(f"unknown thumbnail method {method!r}")
    img = _open(data, limits)
    try:
        if animated and getattr(img, "is_animated", False):
            frames = int(getattr(img, "n_frames", 1))
            if 1 < frames <= limits.max_frames and frames * img.size[0] * img.size[1] <= limits.max_animated_pixels:
                return _animated(img, width, height, method)
            img.seek(0)
        return _static(img, width, height, method, limits)
    except (ThumbnailError, MemoryError):
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ThumbnailError(f"cannot decode image: {e}") from None
    finally:
        img.close()


def expected_size(src_w: int, src_h: int, width: int, height: int, method: str) -> tuple[int, int]:
    """The output size :func:`generate` produces for a source of ``src_w`` × ``src_h``."""
    return target_geometry(src_w, src_h, width, height, method)[1]
