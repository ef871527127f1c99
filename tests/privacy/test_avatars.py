"""Avatars (policy 2.5): optional, removable, re-encoded server-side with every metadata gone."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.avatars import MAX_BYTES, process_avatar, remove_avatar, set_avatar
from app.domain.errors import ValidationFailed
from tests.privacy.conftest import image_bytes, make_person

pytestmark = pytest.mark.policy("2.5")

GPS_IFD = 0x8825
MAKE, MODEL, ORIENTATION, ARTIST = 0x010F, 0x0110, 0x0112, 0x013B


def photo_with_exif(orientation: int = 6) -> bytes:
    """A 300×200 JPEG, left half red and right half blue, with camera, GPS and orientation tags."""
    image = Image.new("RGB", (300, 200), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 150, 200))
    exif = Image.Exif()
    exif[MAKE] = "SecretCamCorp"
    exif[MODEL] = "Spy-9000"
    exif[ARTIST] = "Zhanar Home Address"
    exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (43.0, 14.0, 17.0)
    gps[3] = "E"
    gps[4] = (76.0, 53.0, 40.0)
    out = BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=95)
    data = out.getvalue()
    # the fixture really carries what the test claims it strips
    reread = Image.open(BytesIO(data)).getexif()
    assert reread[MAKE] == "SecretCamCorp" and reread.get_ifd(GPS_IFD)[1] == "N"
    return data


def assert_clean_webp(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    assert image.format == "WEBP"
    assert not image.getexif()
    assert not {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"} & set(image.info)
    for marker in (b"Exif", b"SecretCamCorp", b"Spy-9000", b"Zhanar", b"XMP ", b"ICCP"):
        assert marker not in data
    assert max(image.size) <= 512
    return image


def test_exif_and_gps_are_gone_and_orientation_is_applied() -> None:
    result = assert_clean_webp(process_avatar(photo_with_exif(orientation=6)))
    # orientation 6: shown turned 90° clockwise, so the stored 300×200 becomes 200×300
    assert result.size == (200, 300)
    rgb = result.convert("RGB")
    top = rgb.getpixel((100, 40))
    bottom = rgb.getpixel((100, 260))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_large_photo_is_scaled_down_to_512() -> None:
    data = image_bytes("JPEG", (4000, 3000), quality=70)
    assert Image.open(BytesIO(process_avatar(data))).size == (512, 384)


def test_png_text_chunks_and_icc_profile_are_dropped_alpha_kept() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Zhanar Home Address")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>Zhanar</x:xmpmeta>")
    image = Image.new("RGBA", (80, 80), (10, 200, 10, 128))
    out = BytesIO()
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.save(out, format="PNG", pnginfo=info, icc_profile=icc)
    result = assert_clean_webp(process_avatar(out.getvalue()))
    assert result.mode == "RGBA"


def test_webp_input_is_accepted() -> None:
    assert_clean_webp(process_avatar(image_bytes("WEBP", (100, 100))))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (image_bytes("GIF", (10, 10), mode="P", color=1), "a GIF"),
        (b"Hello, this is a text file renamed to photo.jpg\n" * 10, "text named .jpg"),
        (image_bytes("BMP", (10, 10)), "a BMP"),
        (image_bytes("TIFF", (10, 10)), "a TIFF"),
        (b"", "nothing"),
        (image_bytes("JPEG", (200, 200))[:300], "a truncated JPEG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "a JPEG header and garbage"),
    ],
)
def test_other_files_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        process_avatar(data)
    assert set(caught.value.fields) == {"avatar"}, why
    assert caught.value.fields["avatar"].strip()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (a decompression bomb's shape)."""
    data = image_bytes("PNG", (1, 1), mode="L", color=0)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return data[:8] + patched + data[8 + 25 :]


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (8_000, 6_000), (60_000, 10)])
def test_decompression_bomb_header_is_refused_before_decoding(width: int, height: int) -> None:
    bomb = png_claiming(width, height)
    assert len(bomb) < 200
    with pytest.raises(ValidationFailed) as caught:
        process_avatar(bomb)
    assert "40" in caught.value.fields["avatar"]  # refused for its size, not as unreadable


def test_real_png_over_40_megapixels_is_refused() -> None:
    bomb = image_bytes("PNG", (7_000, 6_000), mode="1", color=0, optimize=True)  # 42 MP
    assert len(bomb) < MAX_BYTES
    with pytest.raises(ValidationFailed) as caught:
        process_avatar(bomb)
    assert "40" in caught.value.fields["avatar"]


def test_more_than_5_mb_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        process_avatar(image_bytes("JPEG", (8, 8)) + b"\x00" * MAX_BYTES)
    assert "5" in caught.value.fields["avatar"]


async def test_set_and_remove_avatar(db: Database, owner_session: AsyncSession) -> None:
    person = await make_person(owner_session)
    async with db.transaction(account_id=person.id) as session:
        stored = await set_avatar(session, person.id, photo_with_exif())
    saved = await owner_session.scalar(
        text("SELECT avatar FROM accounts WHERE id = :a"), {"a": person.id}
    )
    assert saved == stored
    assert_clean_webp(bytes(saved))
    async with db.transaction(account_id=person.id) as session:
        await remove_avatar(session, person.id)
    assert (
        await owner_session.scalar(
            text("SELECT avatar FROM accounts WHERE id = :a"), {"a": person.id}
        )
        is None
    )


async def test_a_refused_upload_keeps_the_old_avatar(
    db: Database, owner_session: AsyncSession
) -> None:
    person = await make_person(owner_session)
    async with db.transaction(account_id=person.id) as session:
        stored = await set_avatar(session, person.id, image_bytes("PNG", (30, 30)))
    with pytest.raises(ValidationFailed):
        async with db.transaction(account_id=person.id) as session:
            await set_avatar(session, person.id, b"GIF89a not really")
    saved = await owner_session.scalar(
        text("SELECT avatar FROM accounts WHERE id = :a"), {"a": person.id}
    )
    assert saved == stored
