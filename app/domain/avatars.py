"""Avatar photos (policy 2.5: optional, removable): checked, re-encoded, stripped of metadata.

An uploaded file is never stored as sent. Its type is read from its content (never its name);
the size in bytes and the pixel count from the header are checked before any pixel is decoded,
so a small file that claims gigapixels (a decompression bomb) costs nothing. What is stored is a
new WebP, at most 512×512, turned upright by its EXIF orientation and carrying no EXIF, GPS, XMP,
ICC profile or text chunk of the original.
"""

from __future__ import annotations

import struct
import warnings
from io import BytesIO

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import audit
from app.domain.audit import Actor
from app.domain.errors import NotFound, ValidationFailed
from app.i18n import N_, gettext

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384  # WebP's own limit; also stops a 1×40 000 000 strip
AVATAR_SIZE = (512, 512)
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
MEDIA_TYPE = "image/webp"
FIELD = "avatar"

_DECODE_ERRORS = (
    OSError,  # includes UnidentifiedImageError and truncated files
    ValueError,
    SyntaxError,  # Pillow's parsers raise it for malformed headers
    EOFError,
    struct.error,
    IndexError,
)


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(fields={FIELD: gettext(message)})


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded colour profile (wide-gamut phones, CMYK scans), then drop it."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # a broken profile: keep the pixels as they are
    return converted if converted is not None else image


def _normalize_mode(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the picture has transparency."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    wanted = "RGBA" if has_alpha else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


def process_avatar(data: bytes) -> bytes:
    """Validate an uploaded photo and return the WebP to store, or raise ValidationFailed."""
    if not data:
        raise _refuse(N_("Upload a photo in JPEG, PNG or WebP format."))
    if len(data) > MAX_BYTES:
        raise _refuse(N_("The photo is too large: at most 5 MB."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                raise _refuse(N_("The photo has too many pixels: at most 40 megapixels."))
            if image.format == "JPEG":
                # decode at a reduced scale straight away (1/2, 1/4 or 1/8 of the full size)
                image.draft("RGB", (AVATAR_SIZE[0] * 2, AVATAR_SIZE[1] * 2))
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            upright = _normalize_mode(_to_srgb(upright))
            upright.thumbnail(AVATAR_SIZE, Image.Resampling.LANCZOS)
            # a new image from the bare pixels: nothing of the original's metadata comes along
            clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    except UnidentifiedImageError as exc:
        raise _refuse(N_("Upload a photo in JPEG, PNG or WebP format.")) from exc
    except Image.DecompressionBombError as exc:
        raise _refuse(N_("The photo has too many pixels: at most 40 megapixels.")) from exc
    except Image.DecompressionBombWarning as exc:
        raise _refuse(N_("The photo has too many pixels: at most 40 megapixels.")) from exc
    except _DECODE_ERRORS as exc:
        raise _refuse(N_("This photo could not be read. Please try another file.")) from exc
    out = BytesIO()
    clean.save(out, format="WEBP", quality=82, method=4)
    return out.getvalue()


async def set_avatar(
    session: AsyncSession, account_id: int, data: bytes, *, actor: Actor | None = None
) -> bytes:
    """Store a processed avatar on the account; returns the stored WebP."""
    avatar = process_avatar(data)
    result = await session.execute(
        text("UPDATE accounts SET avatar = :avatar WHERE id = :a AND deleted_at IS NULL"),
        {"avatar": avatar, "a": account_id},
    )
    if getattr(result, "rowcount", 0) != 1:
        raise NotFound()
    await audit.record(
        session,
        actor=actor or Actor(kind="client", account_id=account_id),
        action="account.avatar_set",
        entity="account",
        entity_id=account_id,
        business_id=None,
    )
    return avatar


async def remove_avatar(
    session: AsyncSession, account_id: int, *, actor: Actor | None = None
) -> None:
    """Delete the account's avatar (nothing of it is kept)."""
    result = await session.execute(
        text("UPDATE accounts SET avatar = NULL WHERE id = :a AND deleted_at IS NULL"),
        {"a": account_id},
    )
    if getattr(result, "rowcount", 0) != 1:
        raise NotFound()
    await audit.record(
        session,
        actor=actor or Actor(kind="client", account_id=account_id),
        action="account.avatar_remove",
        entity="account",
        entity_id=account_id,
        business_id=None,
    )
