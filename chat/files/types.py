"""What a file is, read from its bytes (never from its name or the browser's claim),
and which types the site refuses, re-encodes or shows inline.
"""

import codecs
from typing import IO

import filetype
from filetype.types import TYPES, Type

# Raster images: decoded, re-encoded without metadata, thumbnailed, shown inline.
RASTER_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Names that promise a raster image: such a file must decode as one.
RASTER_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp"})

# Programs are refused outright, whatever their name.
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-dosexec",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-elf",
        "application/x-sharedlib",
        "application/x-mach-binary",
    }
)
# Types a browser would run as a page; never stored as such (the bytes become text).
_ACTIVE_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"}
)

TEXT = "text/plain"
BINARY = "application/octet-stream"
_HEAD_BYTES = 8192
_CHUNK = 64 * 1024


class _MachO(Type):
    """Mach-O programs (macOS), which filetype does not know."""

    MIME = "application/x-mach-binary"
    _MAGIC = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")

    def __init__(self) -> None:
        super().__init__(mime=self.MIME, extension="macho")

    def match(self, buf) -> bool:
        return bytes(buf[:4]) in self._MAGIC


_MATCHERS = (_MachO(), *TYPES)


def type_sniff(file: IO[bytes]) -> str:
    """Returns the MIME type of an open file from its bytes; leaves the file at its start.

    Raster images come back as one of RASTER_TYPES (an animated PNG as image/png);
    bytes no signature matches are text/plain when they are UTF-8 without NUL,
    else application/octet-stream.
    """
    file.seek(0)
    head = file.read(_HEAD_BYTES)
    kind = filetype.match(head, matchers=_MATCHERS)
    if kind is not None:
        mime = kind.mime
        if mime == "image/apng":
            mime = "image/png"
        file.seek(0)
        if mime not in _ACTIVE_TYPES:
            return mime
    mime = TEXT if _is_utf8_text(file) else BINARY
    file.seek(0)
    return mime


def _is_utf8_text(file: IO[bytes]) -> bool:
    """Reads the whole file: valid UTF-8 with no NUL byte is text."""
    file.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := file.read(_CHUNK):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
