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
from app.domain.otp import request_code
from app.domain.privacy import EXPORT_SECTIONS, NOT_EXPORTED, _plain, export_account
from tests.integration.test_personal_data import INVENTORY
from tests.privacy.conftest import SECRET, Scene, build_scene, image_bytes, random_phone

pytestmark = pytest.mark.policy("8.1")

P = "personal"
WITHHELD_DISCLOSURE = "the whole history of P, under a court's secrecy order"


# How each table's rows name the person ``:a``: the test's own reading, written independently
# of the export's queries. A table with a personal column and no entry here fails the
# completeness test until the copy covers it (and it is added here) or NOT_EXPORTED says why.
_CARDS = "(SELECT id FROM clients WHERE account_id = :a)"
_BOOKINGS = f"(SELECT id FROM bookings WHERE account_id = :a OR client_id IN {_CARDS})"
_CONTACTS = "(SELECT unnest(ARRAY[phone, lower(email)]) FROM accounts WHERE id = :a)"
_OWN_ACTIONS = "(SELECT id FROM audit_log WHERE actor_account_id = :a)"
_ABOUT_THEM = (
    "(SELECT id FROM audit_log WHERE (entity = 'account' AND entity_id = :a) "
    f"OR (entity = 'client' AND entity_id IN {_CARDS}) "
    f"OR (entity = 'booking' AND entity_id IN {_BOOKINGS}))"
)
WHOSE: dict[str, str] = {
    "accounts": "id = :a",
    "account_tokens": "account_id = :a",
    "audit_details": f"audit_id IN {_ABOUT_THEM}",
    "bookings": f"id IN {_BOOKINGS}",
    "clients": "account_id = :a",
    "consents": "account_id = :a",
    "consent_technical": "consent_id IN (SELECT id FROM consents WHERE account_id = :a)",
    "data_requests": "account_id = :a",
    "lawful_disclosures": "account_id = :a AND NOT withheld",  # 5.4: where the law allows
    "invitations": "accepted_by = :a OR invited_by = :a "
    f"OR lower(email) IN {_CONTACTS} OR phone IN {_CONTACTS}",
    "messages": f"client_id IN {_CARDS}",  # their threads (a reply they wrote as staff is not)
    "notifications": f"account_id = :a OR lower(address) IN {_CONTACTS}",
    "otp_challenges": "account_id = :a",
    "security_events": "account_id = :a",
    "sessions": "account_id = :a",
    "staff": "account_id = :a",
    "time_off": "staff_id IN (SELECT id FROM staff WHERE account_id = :a)",
}
# narrower, per column: the device an entry about them was written from is the writer's, so
# only their own actions' IP and user agent are theirs
WHOSE_COLUMN: dict[tuple[str, str], str] = {
    ("audit_details", "ip"): f"audit_id IN {_OWN_ACTIONS}",
    ("audit_details", "user_agent"): f"audit_id IN {_OWN_ACTIONS}",
}
# where the copy names a column otherwise (a range gives its bounds)
KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("bookings", "period"): ("start", "end"),
    ("bookings", "blocked_period"): ("blocked_start", "blocked_end"),
    ("bookings", "starts_at"): ("start",),
    ("staff", "name"): ("profile_name",),
}


async def live_personal_columns(owner_session: AsyncSession) -> dict[tuple[str, str], str]:
    """(table, column) → type of every column in the live schema that INVENTORY classifies as
    personal, or does not classify at all (a new column counts as personal until it is)."""
    rows = await owner_session.execute(
        text(
            "SELECT table_name, column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
            "AND table_name NOT LIKE 'saq\\_%'"
        )
    )
    return {(t, c): udt for t, c, udt in rows if INVENTORY.get(t, {}).get(c, P) == P}


def _canon(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)


def _pairs(node: Any, into: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every (key, value) of a JSON document, a value as canonical JSON (nested ones too)."""
    if isinstance(node, dict):
        for key, value in node.items():
            into.add((key, _canon(value)))
            _pairs(value, into)
    elif isinstance(node, list):
        for value in node:
            _pairs(value, into)
    return into


async def missing_from_copy(
    owner_session: AsyncSession, account_id: int, files: dict[str, bytes]
) -> dict[str, str]:
    """Each personal column of the live schema that holds a value about the person which the
    copy does not give, and that NOT_EXPORTED does not explain: ``table.column`` → what."""
    pairs: set[tuple[str, str]] = set()
    for name, content in files.items():
        if name.endswith(".json"):
            _pairs(json.loads(content), pairs)
    binaries = {content for name, content in files.items() if not name.endswith((".json", ".csv"))}
    problems: dict[str, str] = {}
    for (table, column), udt in sorted((await live_personal_columns(owner_session)).items()):
        if (table, column) in NOT_EXPORTED:
            continue
        where = WHOSE_COLUMN.get((table, column)) or WHOSE.get(table)
        if where is None:
            problems[f"{table}.{column}"] = "no way to find the person's rows (WHOSE)"
            continue
        keys = KEYS.get((table, column), (column,))
        selected = f"lower({column}), upper({column})" if udt.endswith("range") else column
        rows = (
            await owner_session.execute(
                text(f"SELECT {selected} FROM {table} WHERE ({where}) AND {column} IS NOT NULL"),
                {"a": account_id},
            )
        ).all()
        if not rows:
            problems[f"{table}.{column}"] = "the scene holds no value of it: the test is blind"
        for row in rows:
            for key, value in zip(keys, row, strict=False):
                if isinstance(value, bytes | memoryview):
                    found = bytes(value) in binaries
                else:
                    found = (key, _canon(value)) in pairs
                if not found:
                    problems[f"{table}.{column}"] = f"{key}={value!r} is not in the copy"
    return problems


async def complete_scene(db: Database, owner_session: AsyncSession, scene: Scene) -> None:
    """What build_scene leaves empty, so every personal column holds a value about P: a
    cancellation with its reason, an answered request, a master profile of P's with a photo
    and an absence, an action of P's own with the device and values it changed, and P's action
    as B's admin on Q's card (whose values are Q's, not P's), a code for a change of phone."""
    p, q = scene.p, scene.q
    async with db.transaction(account_id=p.id) as session:
        await request_code(
            session, channel="sms", destination=random_phone(), ip="192.0.2.66", secret=SECRET,
            purpose="change_phone", account_id=p.id,
        )  # fmt: skip
    await owner_session.execute(
        text(
            "UPDATE bookings SET status = 'cancelled', cancelled_by = 'client', "
            "cancel_reason = :why WHERE id = :id"
        ),
        {"why": f"{p.name} is ill", "id": scene.p_bookings["future_b"]},
    )
    await owner_session.execute(
        text("UPDATE data_requests SET resolution = :r, requester = :w WHERE account_id = :a"),
        {"r": f"Name corrected for {p.name}", "w": f"{p.name}, by letter", "a": p.id},
    )
    # two disclosures about P to an authority (5.4): one P may know of, one the law keeps from
    # P (its request names the authority, not P)
    for given, withheld in (
        (f"bookings of {p.name}", None),
        (WITHHELD_DISCLOSURE, "a court order"),
    ):
        request_id = await owner_session.scalar(
            text(
                "INSERT INTO data_requests (kind, status, channel, requester, received_at, "
                "due_on) VALUES ('lawful_disclosure', 'done', 'letter', 'Police of Almaty', "
                "now(), current_date + 14) RETURNING id"
            )
        )
        await owner_session.execute(
            text(
                "INSERT INTO lawful_disclosures (data_request_id, account_id, authority, "
                "legal_basis, reference, data_given, disclosed_on, withheld, withheld_reason, "
                "export_sha256, recorded_by) VALUES (:r, :a, 'Police of Almaty', 'Art. 1', "
                "'No 7', :given, current_date, :withheld, :why, md5(:given), :by)"
            ),
            {"r": request_id, "a": p.id, "given": given, "withheld": withheld is not None,
             "why": withheld, "by": scene.a.owner_account_id},
        )  # fmt: skip
    staff_id = scene.b.staff_ids[1]
    await owner_session.execute(
        text("UPDATE staff SET account_id = :a, photo = :photo WHERE id = :s"),
        {"a": p.id, "photo": image_bytes("WEBP", (32, 32)), "s": staff_id},
    )
    await owner_session.execute(
        text(
            "INSERT INTO time_off (business_id, staff_id, period, reason) VALUES "
            "(:b, :s, tstzrange(now() + interval '10 days', now() + interval '11 days'), :r)"
        ),
        {"b": scene.b.id, "s": staff_id, "r": f"{p.name}: family matters"},
    )
    await owner_session.execute(
        text(
            "SELECT audit_append(NULL, :a, 'client', 'account.contact_change', 'account', :a, "
            "CAST(:before AS jsonb), CAST(:after AS jsonb), NULL, "
            "CAST('192.0.2.77' AS inet), 'OwnPhone/3.0')"
        ),
        {"a": p.id, "before": json.dumps({"name": "Old name of P"}),
         "after": json.dumps({"name": p.name})},
    )  # fmt: skip
    await owner_session.execute(
        text(
            "SELECT audit_append(:b, :a, 'staff', 'client.notes', 'client', :c, NULL, "
            "CAST(:after AS jsonb), NULL, CAST('192.0.2.78' AS inet), 'AdminDesk/1.0')"
        ),
        {"b": scene.a.id, "a": p.id, "c": scene.q_card,
         "after": json.dumps({"name": q.name, "phone": q.phone})},
    )  # fmt: skip
    await owner_session.commit()


async def test_every_personal_column_about_the_person_is_in_the_copy_or_explained(
    db: Database, owner_session: AsyncSession
) -> None:
    """Driven by the live schema and the personal-data inventory (policy 2.x), not by foreign
    keys: a new personal column fails here until the copy gives it or NOT_EXPORTED says why."""
    scene = await build_scene(db, owner_session)
    await complete_scene(db, owner_session, scene)
    personal = await live_personal_columns(owner_session)
    assert {("audit_details", "ip"), ("time_off", "reason"), ("staff", "photo")} <= set(personal)
    # what the copy leaves out is personal, still in the schema, and said why
    assert set(NOT_EXPORTED) <= set(personal)
    assert all(len(reason) > 40 for reason in NOT_EXPORTED.values())
    assert {t for t, _ in personal} - {t for t, _ in NOT_EXPORTED} <= set(EXPORT_SECTIONS)

    files = await exported(db, scene.p.id)
    assert await missing_from_copy(owner_session, scene.p.id, files) == {}


async def test_the_completeness_check_sees_a_new_personal_column(
    db: Database, owner_session: AsyncSession
) -> None:
    """Not blind: a personal column the copy does not give is reported (a column added in a
    transaction that is rolled back, so the shared schema is left as it was)."""
    scene = await build_scene(db, owner_session)
    await complete_scene(db, owner_session, scene)
    files = await exported(db, scene.p.id)
    await owner_session.execute(text("ALTER TABLE accounts ADD COLUMN nickname text"))
    await owner_session.execute(
        text("UPDATE accounts SET nickname = 'Zhanochka' WHERE id = :a"), {"a": scene.p.id}
    )
    try:
        problems = await missing_from_copy(owner_session, scene.p.id, files)
    finally:
        await owner_session.rollback()
    assert set(problems) == {"accounts.nickname"}


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
    await complete_scene(db, owner_session, scene)
    p, q = scene.p, scene.q
    files = await exported(db, p.id)

    assert set(files) >= {
        "manifest.json", "account.json", "consents.json", "bookings.json", "bookings.csv",
        "client_cards.json", "messages.json", "notifications.json", "sessions.json",
        "security_events.json", "data_requests.json", "business_roles.json",
        "verification_codes.json", "avatar.webp", "email_links.json", "team_invitations.json",
        "audit.json", "master_absences.json", f"master_photos/{scene.b.staff_ids[1]}.webp",
    }  # fmt: skip
    links = load(files, "email_links.json")
    assert [(x["purpose"], x["target"]) for x in links] == [("change_email", f"new.{p.email}")]
    assert all("hash" not in key for link in links for key in link)
    invitations = {x["yours"]: x for x in load(files, "team_invitations.json")}
    assert set(invitations) == {"sent", "accepted", "to you"}
    assert invitations["accepted"]["email"] == p.email
    assert invitations["to you"]["phone"] == p.phone  # still open, at A
    assert invitations["to you"]["business_id"] == scene.a.id
    assert invitations["sent"]["email"] == "colleague@example.kz"
    assert all(invitations[x]["business_id"] == scene.b.id for x in ("sent", "accepted"))
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
    assert all("payload" not in n and "idempotency_key" not in n for n in notifications)

    sessions = load(files, "sessions.json")
    assert len(sessions) == 1 and sessions[0]["user_agent"] == "TestPhone/1.0"
    assert sessions[0]["ip"] == "192.0.2.10" and "csrf_secret" not in sessions[0]

    consents = load(files, "consents.json")
    assert consents[0]["action"] == "granted" and consents[0]["ip"] == "192.0.2.10"
    assert [e["event"] for e in load(files, "security_events.json")] == ["sign_in"]
    roles = load(files, "business_roles.json")
    assert sorted((r["business_id"], r["role"], r["photo"]) for r in roles) == [
        (scene.b.id, "admin", None),
        (scene.b.id, "master", f"master_photos/{scene.b.staff_ids[1]}.webp"),
    ]

    requests = load(files, "data_requests.json")
    assert [r["kind"] for r in requests] == ["correct", "access"]
    access = requests[-1]
    assert access["status"] == "done" and access["done_at"] and access["due_on"]

    # the audit log about P: P's own action with its device and values; the business's change
    # to P's card with its values but not the owner's device; P's change to Q's card, without
    # Q's values
    entries = load(files, "audit.json")
    own = next(e for e in entries if e["action"] == "account.contact_change")
    assert (own["by_you"], own["ip"], own["user_agent"]) == (True, "192.0.2.77", "OwnPhone/3.0")
    assert (own["before"], own["after"]) == ({"name": "Old name of P"}, {"name": p.name})
    by_business = next(
        e
        for e in entries
        if e["entity_id"] == scene.p_cards["a"] and e["action"] == "client.update"
    )
    assert by_business["after"]["phone"] == p.phone and by_business["by_you"] is False
    assert by_business["ip"] is None and by_business["user_agent"] is None
    on_q = next(e for e in entries if e["entity_id"] == scene.q_card)
    assert (on_q["ip"], on_q["after"], on_q["values_withheld"]) == ("192.0.2.78", None, True)
    assert "actor_account_id" not in own
    [absence] = load(files, "master_absences.json")
    assert absence["reason"] == f"{p.name}: family matters" and absence["business_id"] == scene.b.id
    to_addresses = [n for n in load(files, "notifications.json") if n.get("address") == p.phone]
    assert {n["event"] for n in to_addresses} == {"otp.code"}  # the sign-in code to P's phone

    # nothing of Q, nor P's secrets, nor another person's device
    everything = b"\n".join(files.values()).decode("utf-8", errors="replace")
    for foreign in (q.name, q.phone, q.national_phone, q.email, str(q.telegram_id),
                    scene.q_message, "Aliya's comment", "192.0.2.99", "198.51.100.7",
                    "Dashboard/1.0", WITHHELD_DISCLOSURE, "a court order"):  # fmt: skip
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
