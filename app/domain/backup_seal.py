"""The sealed-file format of the backups: a header, then AES-256-GCM chunks (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár, "Online authenticated-encryption").

Header (28 bytes, written in the clear and bound into every chunk as associated data)::

    magic "PZBACKUP" | format version (1 byte) | key id (8 bytes) | chunk size (4 bytes, big
    endian) | nonce prefix (7 random bytes)

The key id is the first 8 bytes of SHA-256 of the key: a wrong key is named as such before any
decryption. Each chunk is ``chunk size`` bytes of plaintext (the last may be shorter, even
empty) sealed with the nonce ``prefix | chunk index (4 bytes) | final flag (1 byte)`` and the
header as associated data, followed by its 16-byte tag. So a flipped byte anywhere fails that
chunk; chunks moved, dropped or copied from another file fail (their index or prefix differs);
a file cut short at a chunk boundary has no chunk sealed as final; bytes appended after the
final chunk make it read as a middle chunk, which its final flag then refuses. Every refusal
says which of these it found.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"PZBACKUP"
FORMAT_VERSION = 1
CHUNK_SIZE = 1 << 20  # 1 MiB of plaintext a chunk
TAG_SIZE = 16
PREFIX_SIZE = 7
_HEADER = struct.Struct(">8sB8sI7s")
HEADER_SIZE = _HEADER.size
MAX_CHUNKS = 2**32  # the index has 4 bytes: 4 PiB at 1 MiB a chunk


class SealError(Exception):
    """The sealed file is refused; the message says why, for the operator."""


class WrongKey(SealError):
    pass


class Tampered(SealError):
    pass


class Truncated(SealError):
    pass


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:8]


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise SealError("too many chunks for one sealed file")
    return prefix + struct.pack(">IB", index, 1 if final else 0)


class Sealer:
    """Seals a stream written to ``out`` piece by piece; ``finish()`` seals the final chunk."""

    def __init__(self, key: bytes, out: IO[bytes], *, chunk_size: int = CHUNK_SIZE) -> None:
        self._aead = AESGCM(key)
        self._out = out
        self._chunk_size = chunk_size
        self._prefix = os.urandom(PREFIX_SIZE)
        self._header = _HEADER.pack(MAGIC, FORMAT_VERSION, key_id(key), chunk_size, self._prefix)
        self._buffer = bytearray()
        self._index = 0
        self.plaintext_size = 0
        out.write(self._header)

    def _seal(self, data: bytes, final: bool) -> None:
        nonce = _nonce(self._prefix, self._index, final)
        self._out.write(self._aead.encrypt(nonce, data, self._header))
        self._index += 1

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.plaintext_size += len(data)
        # keep at least one byte back: only finish() knows which chunk is the last
        while len(self._buffer) > self._chunk_size:
            self._seal(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]

    def finish(self) -> None:
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()


def _read_exactly(source: IO[bytes], size: int) -> bytes:
    parts = []
    while size > 0:
        part = source.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def unseal(source: IO[bytes], key: bytes) -> Iterator[bytes]:
    """The plaintext, chunk by chunk, each authenticated before it is yielded. Raises
    ``WrongKey``, ``Tampered`` or ``Truncated`` (all ``SealError``) with a clear message; a
    consumer must treat what it got before an error as void."""
    header = _read_exactly(source, HEADER_SIZE)
    if len(header) < len(MAGIC) or header[: len(MAGIC)] != MAGIC:
        raise Tampered("not a PoZapisi backup (its first bytes are not the backup header)")
    if len(header) < HEADER_SIZE:
        raise Truncated("the file is cut short inside its header")
    _, version, their_key_id, chunk_size, prefix = _HEADER.unpack(header)
    if version != FORMAT_VERSION:
        raise Tampered(f"unknown backup format version {version} (this program reads 1)")
    if their_key_id != key_id(key):
        raise WrongKey(
            f"this backup was sealed with another key (key id {their_key_id.hex()}; the "
            f"BACKUP_KEY given has key id {key_id(key).hex()})"
        )
    if not 0 < chunk_size <= 64 * CHUNK_SIZE:
        raise Tampered(f"the header names an impossible chunk size ({chunk_size})")
    aead = AESGCM(key)
    block = chunk_size + TAG_SIZE
    index = 0
    current = _read_exactly(source, block)
    while True:
        following = _read_exactly(source, block) if len(current) == block else b""
        final = not following
        if len(current) < TAG_SIZE:
            raise Truncated(f"the file is cut short: chunk {index} is incomplete")
        try:
            plaintext = aead.decrypt(_nonce(prefix, index, final), current, header)
        except InvalidTag:
            raise _why_refused(aead, prefix, index, final, current, header) from None
        yield plaintext
        if final:
            return
        current = following
        index += 1


def _why_refused(
    aead: AESGCM, prefix: bytes, index: int, final: bool, chunk: bytes, header: bytes
) -> SealError:
    """Tell a cut or an appendix from an altered byte: try the chunk with the other flag."""
    try:
        aead.decrypt(_nonce(prefix, index, not final), chunk, header)
    except InvalidTag:
        if final:  # at the end of the file: a cut inside a chunk looks like this too
            return Truncated(
                f"the last chunk ({index}) fails authentication: the file is cut short "
                "or was altered"
            )
        return Tampered(
            f"chunk {index} fails authentication: the file was altered or corrupted "
            "(or its header was)"
        )
    if final:
        return Truncated(
            f"the file is cut short: it ends after chunk {index}, which is not the last one"
        )
    return Tampered(f"data was appended after the final chunk ({index})")


def verify_stream(source: IO[bytes], key: bytes) -> int:
    """Authenticate every chunk without keeping anything; the plaintext size."""
    return sum(len(chunk) for chunk in unseal(source, key))
