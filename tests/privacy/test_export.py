"""A copy of the data held about the person (policy 8.1): every table, every business, nobody
else's data."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.errors import Unauthorized
from app.domain.privacy import EXPORT_SECTIONS, export_account
from tests.privacy.conftest import Scene, build_scene

pytestmark = pytest.mark.policy("8.1")

# tables a person's rows hang from: a table that refers to one of these holds data about them
PERSONAL_PARENTS = ("accounts", "clients", "consents")


async def personal_tables(owner_session: AsyncSession) -> set[str]:
    """From the live schema, so a new table about people fails this test until it is exported."""
    rows = await owner_session.execute(
        text(
            "SELECT DISTINCT con.conrelid::regclass::text FROM pg_constraint con "
            "WHERE con.contype = 'f' AND con.confrelid::regclass::text = ANY(:parents) "
            "AND con.connamespace = 'public'::regnamespace"
        ),
        {"parents": list(PERSONAL_PARENTS)},
    )
    return {"accounts", *rows.scalars()}


async def test_every_table_about_a_person_is_in_the_copy(owner_session: AsyncSession) -> None:
    tables = await personal_tables(owner_session)
    assert {"bookings", "clients", "messages", "sessions", "consent_technical"} <= tables
    assert tables <= set(EXPORT_SECTIONS), tables - set(EXPORT_SECTIONS)


async def exported(db: Database, account_id: int) -> dict[str, bytes]:
    async with db.transaction(account_id=account_id) as session:
        data = await export_account(session, account_id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def load(files: dict[str, bytes], name: str) -> Any:
    return json.loads(files[name])


async def test_copy_covers_every_business_and_leaves_others_out(
    db: Database, owner_session: AsyncSession
) -> None:
    scene: Scene = await build_scene(db, owner_session)
    p, q = scene.p, scene.q
    files = await exported(db, p.id)

    assert set(files) >= {
        "manifest.json", "account.json", "consents.json", "bookings.json", "bookings.csv",
        "client_cards.json", "messages.json", "notifications.json", "sessions.json",
        "security_events.json", "data_requests.json", "business_roles.json",
        "verification_codes.json", "avatar.webp", "email_links.json", "team_invitations.json",
    }  # fmt: skip
    links = load(files, "email_links.json")
    assert [(x["purpose"], x["target"]) for x in links] == [("change_email", f"new.{p.email}")]
    assert all("hash" not in key for link in links for key in link)
    invitations = {x["yours"]: x for x in load(files, "team_invitations.json")}
    assert set(invitations) == {"sent", "accepted"}
    assert invitations["accepted"]["email"] == p.email
    assert invitations["sent"]["email"] == "colleague@example.kz"
    assert all(x["business_id"] == scene.b.id for x in invitations.values())
    manifest = load(files, "manifest.json")
    assert manifest["account_id"] == p.id and set(manifest["files"]) == set(files)

    account = load(files, "account.json")
    assert (account["name"], account["phone"], account["email"], account["telegram_id"]) == (
        p.name, p.phone, p.email, p.telegram_id,
    )  # fmt: skip
    assert "password_hash" not in account and account["has_password"] is True
    assert account["has_avatar"] is True
    assert Image.open(io.BytesIO(files["avatar.webp"])).format == "WEBP"

    # bookings in both businesses, including the one the desk made for P's card
    bookings = load(files, "bookings.json")
    assert {row["id"] for row in bookings} == set(scene.p_bookings.values())
    businesses = {row["business_id"] for row in bookings}
    assert businesses == {scene.a.id, scene.b.id}
    first = next(row for row in bookings if row["id"] == scene.p_bookings["future_a"])
    assert first["service_name"]["ru"] == "Стрижка" and first["price_tiyn"] == 500000
    assert first["business"] == f"Test {scene.a.slug}" and first["master"] == "Master 0"
    assert first["start"] < first["end"] and first["status"] == "confirmed"
    rows = list(csv.DictReader(io.StringIO(files["bookings.csv"].decode("utf-8-sig"))))
    assert len(rows) == 4 and {r["code"] for r in rows} == {b["public_code"] for b in bookings}
    assert {r["service"] for r in rows} == {"Шаш қию"}  # P's language is kk

    cards = load(files, "client_cards.json")
    assert {c["id"] for c in cards} == set(scene.p_cards.values())
    card_a = next(c for c in cards if c["id"] == scene.p_cards["a"])
    assert card_a["notes"].startswith(p.name) and card_a["tags"] == ["vip"]  # notes about P

    messages = load(files, "messages.json")
    assert [m["body"] for m in messages] == scene.p_messages
    assert all("author_account_id" not in m for m in messages)

    notifications = load(files, "notifications.json")
    assert "booking.created" in {n["event"] for n in notifications}
    assert all("payload" not in n and "address" not in n for n in notifications)

    sessions = load(files, "sessions.json")
    assert len(sessions) == 1 and sessions[0]["user_agent"] == "TestPhone/1.0"
    assert sessions[0]["ip"] == "192.0.2.10" and "csrf_secret" not in sessions[0]

    consents = load(files, "consents.json")
    assert consents[0]["action"] == "granted" and consents[0]["ip"] == "192.0.2.10"
    assert [e["event"] for e in load(files, "security_events.json")] == ["sign_in"]
    roles = load(files, "business_roles.json")
    assert [(r["business_id"], r["role"]) for r in roles] == [(scene.b.id, "admin")]

    requests = load(files, "data_requests.json")
    assert [r["kind"] for r in requests] == ["correct", "access"]
    access = requests[-1]
    assert access["status"] == "done" and access["done_at"] and access["due_on"]

    # nothing of Q, nor P's secrets
    everything = b"\n".join(files.values()).decode("utf-8", errors="replace")
    for foreign in (q.name, q.phone, q.national_phone, q.email, str(q.telegram_id),
                    scene.q_message, "Aliya's comment", "192.0.2.99"):  # fmt: skip
        assert foreign not in everything, foreign
    for secret in (scene.session_csrf, scene.session_token, "$2b$12$"):
        assert secret not in everything
    password_hash = await owner_session.scalar(
        text("SELECT password_hash FROM accounts WHERE id = :a"), {"a": p.id}
    )
    assert password_hash and password_hash not in everything


async def test_the_export_is_recorded_and_audited(
    db: Database, owner_session: AsyncSession
) -> None:
    scene = await build_scene(db, owner_session)
    await exported(db, scene.p.id)
    kinds = (
        await owner_session.execute(
            text("SELECT kind, status FROM data_requests WHERE account_id = :a ORDER BY id"),
            {"a": scene.p.id},
        )
    ).all()
    assert [tuple(k) for k in kinds] == [("correct", "received"), ("access", "done")]
    audited = await owner_session.scalar(
        text(
            "SELECT count(*) FROM audit_log WHERE chain_key = 0 AND action = 'account.export' "
            "AND entity_id = :a"
        ),
        {"a": scene.p.id},
    )
    assert audited == 1


async def test_nobody_exports_someone_else(db: Database, owner_session: AsyncSession) -> None:
    scene = await build_scene(db, owner_session)
    for context in (scene.q.id, None):
        with pytest.raises(Unauthorized):
            async with db.transaction(account_id=context) as session:
                await export_account(session, scene.p.id)
