"""Raster images: decoded under a pixel limit, turned upright, re-encoded without their
metadata (EXIF, GPS, XMP, comments), and given a thumbnail.
"""

import io
import struct
import warnings
from dataclasses import dataclass
from typing import IO

from django.utils.formats import number_format
from django.utils.translation import gettext
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

# A thumbnail fits in this box, keeping the image's aspect; always WebP.
THUMB_BOX = (320, 320)
THUMB_TYPE = "image/webp"
# More frames than this is refused, however small each one.
MAX_FRAMES = 1000

# Pillow's name of a format, and the type it is stored and served as. MPO is the
# JPEG of many phone cameras (a JPEG with extra pictures): kept as its first picture.
_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
_SAVE_AS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
# What a malformed file makes Pillow raise while reading it.
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error)


class ImageRefused(Exception):
    """Bytes that are no readable image (`bad_type`), or too many pixels (`too_big`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready to store: its re-encoded bytes, type and size, and its thumbnail."""

    data: bytes
    type: str
    width: int
    height: int
    thumb: bytes


def image_prepare(file: IO[bytes], *, max_pixels: int) -> PreparedImage:
    """Decodes an image file and returns it upright, without metadata, with a thumbnail.

    Raises ImageRefused when the bytes are not a JPEG, PNG, GIF or WebP image Pillow
    can read, or when the image (all frames together) has more than `max_pixels`.
    Animated GIF, PNG and WebP keep all their frames.
    """
    too_big = ImageRefused(
        "too_big",
        gettext("the image has too many pixels (at most %(limit)s)")
        % {"limit": number_format(max_pixels, force_grouping=True)},
    )
    # Pillow warns past the limit and refuses past twice it; both are refusals here.
    Image.MAX_IMAGE_PIXELS = max_pixels
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                mime = _TYPES.get(image.format or "")
                if mime is None:
                    raise ImageRefused(
                        "bad_type", gettext("the file is not a JPEG, PNG, GIF or WebP image")
                    )
                frames = 1 if mime == "image/jpeg" else getattr(image, "n_frames", 1)
                if frames > MAX_FRAMES:
                    raise ImageRefused(
                        "too_big",
                        gettext("the image has more than %(count)d frames") % {"count": MAX_FRAMES},
                    )
                if image.width * image.height * frames > max_pixels:
                    raise too_big
                if frames > 1:
                    data, first = _encode_animation(image, mime)
                else:
                    data, first = _encode_still(image, mime)
                thumb = _thumbnail(first)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_big from None
    except _UNREADABLE:
        raise ImageRefused("bad_type", "the file is not a readable image") from None
    return PreparedImage(data=data, type=mime, width=first.width, height=first.height, thumb=thumb)


def _bare(image: Image.Image) -> Image.Image:
    """Drops every metadata entry Pillow would write back, keeping only transparency."""
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    return image


def _encode_still(image: Image.Image, mime: str) -> tuple[bytes, Image.Image]:
    """Re-encodes a single picture upright; returns the bytes and the upright picture."""
    icc = image.info.get("icc_profile")
    upright = ImageOps.exif_transpose(image)
    if mime == "image/jpeg" and upright.mode not in ("L", "RGB", "CMYK"):
        upright = upright.convert("RGB")
    options: dict = {"icc_profile": icc} if icc else {}
    if mime in ("image/jpeg", "image/webp"):
        options["quality"] = 90
    out = io.BytesIO()
    _bare(upright).save(out, format=_SAVE_AS[mime], **options)
    return out.getvalue(), upright


def _encode_animation(image: Image.Image, mime: str) -> tuple[bytes, Image.Image]:
    """Re-encodes every frame with its timing; returns the bytes and the first frame."""
    loop = image.info.get("loop", 0)
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        frames.append(_bare(ImageOps.exif_transpose(frame)))
    out = io.BytesIO()
    options: dict = {"quality": 90} if mime == "image/webp" else {}
    frames[0].save(
        out,
        format=_SAVE_AS[mime],
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=loop,
        **options,
    )
    return out.getvalue(), frames[0]


def _thumbnail(image: Image.Image) -> bytes:
    """A still WebP of the picture (an animation's first frame) that fits in THUMB_BOX."""
    thumb = image.convert("RGBA" if image.has_transparency_data else "RGB")
    thumb.thumbnail(THUMB_BOX)
    out = io.BytesIO()
    _bare(thumb).save(out, format="WEBP", quality=80)
    return out.getvalue()
