"""My data (privacy policy section 8) as a person uses it, in real Chromium."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from tests.browser.conftest import pick_day
from tests.browser.test_miniapp_telegram import book_first_slot
from tests.conftest import BOT_TOKEN
from tests.factories import create_business, next_telegram_id
from tests.support.telegram import make_init_data

pytestmark = pytest.mark.browser


def photo_with_gps(path: Path) -> None:
    image = Image.new("RGB", (1200, 900), (200, 120, 80))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0110] = "Model X-1"  # Model
    exif[0x9003] = "2026:11:27 10:00:00"  # DateTimeOriginal
    image.save(path, "JPEG", exif=exif.tobytes())


@pytest.mark.policy("8.1")
@pytest.mark.policy("8.3")
@pytest.mark.policy("8.4")
@pytest.mark.policy("2.5")
async def test_my_data_rights(phone_page, live_server, owner_session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page, watch = phone_page
    business = await create_business(owner_session)
    await owner_session.commit()
    telegram_id = next_telegram_id()
    init_data = make_init_data(
        BOT_TOKEN, user_id=telegram_id, first_name="Жанар", language_code="ru"
    )
    await book_first_slot(page, live_server, business.slug, init_data)

    await page.goto(f"{live_server}/app/me")
    await watch.shot("my-data")
    assert await watch.fits_360()

    # correct the name (2.1: optional, editable)
    await page.fill("input[name=name]", "Жанар Сейіт")
    await page.click("text=Сохранить имя")
    await page.wait_for_selector(".success")
    assert await page.input_value("input[name=name]") == "Жанар Сейіт"

    # avatar: re-encoded server-side, metadata gone
    photo = tmp_path / "me.jpg"
    photo_with_gps(photo)
    await page.set_input_files("input[name=avatar]", str(photo))
    await page.click("text=Загрузить фото")
    await page.wait_for_selector("img.avatar")
    stored = await owner_session.scalar(
        text("SELECT avatar FROM accounts WHERE telegram_id = :t"), {"t": telegram_id}
    )
    await owner_session.commit()
    assert stored is not None
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "WEBP"
        assert max(image.size) <= 512
        assert not image.getexif()
    assert b"SecretCam" not in stored

    # a copy of my data (8.1)
    async with page.expect_download() as download_info:
        await page.click("text=Скачать копию моих данных")
    download = await download_info.value
    archive = zipfile.ZipFile(await download.path())
    names = set(archive.namelist())
    assert {"account.json", "bookings.json", "bookings.csv", "consents.json"} <= names
    assert json.loads(archive.read("account.json"))["name"] == "Жанар Сейіт"
    [booked] = json.loads(archive.read("bookings.json"))  # the one booking made above
    assert (booked["business_id"], booked["business"]) == (business.id, f"Test {business.slug}")
    assert (booked["service_name"]["ru"], booked["status"], booked["source"]) == (
        "Стрижка", "confirmed", "mini_app",
    )  # fmt: skip

    # withdraw consent (8.4): effective at once, the next booking asks again
    await page.click("text=Отозвать согласие")
    await page.wait_for_selector("a[href^='/app/consent']")
    await page.goto(f"{live_server}/app/b/{business.slug}")
    await page.click("a.service >> nth=0")
    await pick_day(page)  # a day ahead: late in the evening today has no free time left
    await page.click("#times .slot >> nth=3")
    await page.wait_for_url("**/app/consent**")

    # delete the account (8.3): signed out at once, the old session no longer works
    cookies_before = await page.context.cookies()
    account_id = await owner_session.scalar(
        text("SELECT id FROM accounts WHERE telegram_id = :t"), {"t": telegram_id}
    )
    await owner_session.commit()
    await page.goto(f"{live_server}/app/me")
    await page.check("input[name=confirm]")
    await page.click("text=Удалить аккаунт")
    await page.wait_for_selector("#account-deleted")
    row = (
        await owner_session.execute(
            text(
                "SELECT a.name, a.telegram_id, a.avatar, a.deleted_at, "
                "(SELECT count(*) FROM sessions s WHERE s.account_id = a.id AND s.revoked_at IS NULL) "
                "AS live_sessions FROM accounts a WHERE a.id = :id"
            ),
            {"id": account_id},
        )
    ).one()
    await owner_session.commit()
    assert row.deleted_at is not None
    assert (row.name, row.telegram_id, row.avatar) == (None, None, None)
    assert row.live_sessions == 0
    # the old session cookie signs nobody in any more
    old_cookie = next(c["value"] for c in cookies_before if c["name"] == "__Host-pz_app")
    async with httpx.AsyncClient() as http:  # the cookie by hand: httpx drops Secure ones on http
        response = await http.get(
            f"{live_server}/app/bookings",
            headers={"Cookie": f"__Host-pz_app={old_cookie}"},
            follow_redirects=False,
        )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/app/signin")
    assert watch.foreign == []
