"""The sealed format of the backups (app.domain.backup_seal): every kind of damage is refused,
and named. Small chunks, so a few hundred bytes make many of them."""

from __future__ import annotations

import io
import os

import pytest

from app.domain.backup_seal import (
    HEADER_SIZE,
    TAG_SIZE,
    Sealer,
    SealError,
    Tampered,
    Truncated,
    WrongKey,
    unseal,
    verify_stream,
)

CHUNK = 64
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BLOCK = CHUNK + TAG_SIZE


def seal(data: bytes, key: bytes = KEY, chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    sealer = Sealer(key, out, chunk_size=chunk_size)
    for start in range(0, len(data), 50):  # written in pieces that straddle the chunks
        sealer.write(data[start : start + 50])
    sealer.finish()
    return out.getvalue()


def opened(sealed: bytes, key: bytes = KEY) -> bytes:
    return b"".join(unseal(io.BytesIO(sealed), key))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_of_every_length(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    chunks = max(1, -(-size // CHUNK))  # the last chunk holds 1..CHUNK bytes (0: empty)
    assert len(sealed) == HEADER_SIZE + size + chunks * TAG_SIZE
    assert opened(sealed) == data
    assert verify_stream(io.BytesIO(sealed), KEY) == size


def test_two_seals_of_the_same_data_differ() -> None:
    data = b"the same dump" * 20
    assert seal(data) != seal(data)  # a fresh nonce prefix each time


def test_a_wrong_key_is_named_before_anything_is_decrypted() -> None:
    with pytest.raises(WrongKey, match="another key"):
        opened(seal(b"x" * 300), OTHER_KEY)


@pytest.mark.parametrize("position", [0, 9, 12, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 70,
                                      HEADER_SIZE + BLOCK + 3, -1])  # fmt: skip
def test_one_flipped_byte_anywhere_is_refused(position: int) -> None:
    sealed = bytearray(seal(os.urandom(4 * CHUNK + 10)))
    sealed[position] ^= 0x01
    with pytest.raises(SealError):
        opened(bytes(sealed))


def test_a_flipped_byte_in_a_middle_chunk_says_which_chunk() -> None:
    sealed = bytearray(seal(os.urandom(4 * CHUNK + 10)))
    sealed[HEADER_SIZE + 2 * BLOCK + 5] ^= 0x80
    with pytest.raises(Tampered, match="chunk 2 fails authentication"):
        opened(bytes(sealed))


def test_a_file_cut_at_a_chunk_boundary_is_truncated() -> None:
    sealed = seal(os.urandom(4 * CHUNK + 10))
    with pytest.raises(Truncated, match="cut short"):
        opened(sealed[: HEADER_SIZE + 2 * BLOCK])


@pytest.mark.parametrize("keep", [5, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 10, -1])
def test_a_file_cut_anywhere_else_is_refused(keep: int) -> None:
    sealed = seal(os.urandom(3 * CHUNK))
    with pytest.raises(SealError):
        opened(sealed[:keep])


def test_appended_bytes_are_refused() -> None:
    whole_chunks = seal(os.urandom(2 * CHUNK))  # its final chunk is a full one
    with pytest.raises(Tampered, match="appended after the final chunk"):
        opened(whole_chunks + os.urandom(BLOCK))
    with pytest.raises(SealError):
        opened(seal(os.urandom(2 * CHUNK + 3)) + os.urandom(7))


def test_swapped_chunks_are_refused() -> None:
    sealed = seal(os.urandom(4 * CHUNK))
    body = sealed[HEADER_SIZE:]
    blocks = [body[i : i + BLOCK] for i in range(0, len(body), BLOCK)]
    blocks[0], blocks[1] = blocks[1], blocks[0]
    with pytest.raises(Tampered):
        opened(sealed[:HEADER_SIZE] + b"".join(blocks))


def test_a_chunk_from_another_file_is_refused() -> None:
    data = os.urandom(3 * CHUNK)
    first, second = seal(data), seal(data)
    spliced = first[: HEADER_SIZE + BLOCK] + second[HEADER_SIZE + BLOCK :]
    with pytest.raises(Tampered):
        opened(spliced)


def test_what_is_not_a_backup_is_named() -> None:
    with pytest.raises(Tampered, match="not a PoZapisi backup"):
        opened(b"PGDMP" + os.urandom(200))
