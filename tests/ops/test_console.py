"""What operators do in the console: a person's data read only with a reason, and in the audit
chain then (6.3); the queue of requests by due date (8.6); requests logged from a letter or a
call; answers; lawful disclosures (5.4); the daily reminder."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.db.urls import to_sqlalchemy
from app.domain.privacy import export_account
from tests.ops.conftest import OperatorLogin, sign_in
from tests.support.dashboard import form
from workers import ops_reminders


async def person(session: AsyncSession, *, password_hash: str | None = None) -> dict[str, Any]:
    """A client with an e-mail, a phone and a password (whose hash must never be shown)."""
    email = f"person-{uuid4().hex[:10]}@example.com"
    phone = f"+7701{uuid4().int % 10_000_000:07d}"
    account_id = await session.scalar(
        text(
            "INSERT INTO accounts (name, email, phone, locale, password_hash) "
            "VALUES ('Aigerim Person', :e, :p, 'kk', :h) RETURNING id"
        ),
        {"e": email, "p": phone, "h": password_hash or "$2b$12$" + "x" * 53},
    )
    await session.commit()
    return {"id": account_id, "email": email, "phone": phone}


async def platform_entries(session: AsyncSession, action: str) -> list[Any]:
    rows = await session.execute(
        text(
            "SELECT l.id, l.actor_account_id, l.actor_kind, l.entity, l.entity_id, d.after "
            "FROM audit_log l LEFT JOIN audit_details d ON d.audit_id = l.id "
            "WHERE l.chain_key = 0 AND l.action = :action ORDER BY l.id"
        ),
        {"action": action},
    )
    await session.commit()
    return list(rows)


async def chains_hold(session: AsyncSession) -> bool:
    problems = (await session.execute(text("SELECT * FROM audit_verify()"))).all()
    await session.commit()
    return problems == []


@pytest.mark.policy("6.3")
async def test_a_read_without_a_reason_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    csrf = await sign_in(client, support)
    someone = await person(owner_session)
    before = len(await platform_entries(owner_session, "ops.person_read"))
    for reason in ("", "   ", "because"):  # none, blank, too short to be a reason
        refused = await client.post("/ops/people", data=form(csrf, query=someone["email"],
                                                             reason=reason))  # fmt: skip
        assert refused.status_code == 422
        assert someone["email"] not in refused.text.replace(f'value="{someone["email"]}"', "")
        assert "Aigerim" not in refused.text
    assert len(await platform_entries(owner_session, "ops.person_read")) == before
    # the request's contents too
    request_id = await owner_session.scalar(
        text(
            "INSERT INTO data_requests (account_id, kind, channel, details, due_on, requester) "
            "VALUES (:a, 'access', 'email', '{\"text\": \"my secret words\"}', current_date, "
            "'Aigerim by e-mail') RETURNING id"
        ),
        {"a": someone["id"]},
    )
    await owner_session.commit()
    summary = await client.get(f"/ops/requests/{request_id}")
    assert summary.status_code == 200 and "my secret words" not in summary.text
    assert "Aigerim" not in summary.text
    refused = await client.post(f"/ops/requests/{request_id}/read", data=form(csrf, reason="x"))
    assert refused.status_code == 422 and "my secret words" not in refused.text
    assert await platform_entries(owner_session, "ops.request_read") == [] or all(
        row.entity_id != request_id
        for row in await platform_entries(owner_session, "ops.request_read")
    )


@pytest.mark.policy("6.3")
async def test_a_read_with_a_reason_is_in_the_audit_chain(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    csrf = await sign_in(client, support)
    someone = await person(owner_session)
    reason = "Answering access request by e-mail of 5 December"
    shown = await client.post("/ops/people", data=form(csrf, query=someone["phone"], reason=reason))
    assert shown.status_code == 200
    assert someone["email"] in shown.text and "Aigerim Person" in shown.text
    # never a password hash, code, token or secret
    assert "$2b$" not in shown.text and "password_hash" not in shown.text
    [entry] = [
        row
        for row in await platform_entries(owner_session, "ops.person_read")
        if row.entity_id == someone["id"]
    ]
    assert entry.actor_account_id == support.account_id  # who
    assert entry.actor_kind == "operator"
    assert entry.entity == "account"  # whom
    assert entry.after["reason"] == reason  # why
    assert entry.after["what"] == "person"  # what
    assert await chains_hold(owner_session)
    # found by e-mail too, in any case of letters
    again = await client.post(
        "/ops/people", data=form(csrf, query=someone["email"].upper(), reason=reason)
    )
    assert again.status_code == 200 and someone["phone"] in again.text
    # nobody with that address: 404, and the question itself is audited
    nobody = await client.post(
        "/ops/people", data=form(csrf, query="nobody-x@example.com", reason=reason)
    )
    assert nobody.status_code == 404


@pytest.mark.policy("8.6")
async def test_the_queue_is_ordered_by_due_date_and_flags_overdue(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    today = datetime.now(UTC).date()
    ids = {}
    for name, due in (("later", today + timedelta(days=40)), ("overdue", today - timedelta(days=3)),
                      ("soon", today + timedelta(days=1))):  # fmt: skip
        ids[name] = await owner_session.scalar(
            text(
                "INSERT INTO data_requests (kind, channel, due_on, requester) "
                "VALUES ('correct', 'letter', :due, 'someone') RETURNING id"
            ),
            {"due": due},
        )
    closed = await owner_session.scalar(
        text(
            "INSERT INTO data_requests (kind, channel, due_on, status, done_at) "
            "VALUES ('access', 'email', :due, 'done', now()) RETURNING id"
        ),
        {"due": today - timedelta(days=30)},
    )
    await owner_session.commit()
    await sign_in(client, support)
    page = (await client.get("/ops/")).text
    rows = re.findall(r'<tr class="([^"]*)" data-request="(\d+)">', page)
    order = [int(i) for _cls, i in rows]
    assert [order.index(ids[n]) for n in ("overdue", "soon", "later")] == sorted(
        order.index(ids[n]) for n in ("overdue", "soon", "later")
    )
    flags = {int(i): cls for cls, i in rows}
    assert flags[ids["overdue"]] == "overdue"
    assert flags[ids["soon"]] == "due-soon"
    assert flags[ids["later"]] == ""
    assert closed not in order  # open requests only, unless asked
    everything = (await client.get("/ops/?all=1")).text
    assert f'data-request="{closed}"' in everything
    assert f'<tr class="" data-request="{closed}">' in everything  # closed: never overdue


@pytest.mark.policy("8.6")
async def test_a_request_by_letter_is_due_by_the_calendar_from_the_day_it_arrived(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    csrf = await sign_in(client, support)
    someone = await person(owner_session)
    logged = await client.post(
        "/ops/requests",
        data=form(csrf, kind="delete", channel="letter", received_on="2026-03-18",
                  requester="Aigerim Person", contact=someone["email"],
                  details="Please delete my account."),
        follow_redirects=False,
    )  # fmt: skip
    assert logged.status_code == 303
    request_id = int(logged.headers["location"].rsplit("/", 1)[1])
    row = (
        await owner_session.execute(
            text("SELECT account_id, due_on, handled_by, channel FROM data_requests WHERE id = :i"),
            {"i": request_id},
        )
    ).one()
    await owner_session.commit()
    # received Wed 18 March 2026, before Nauryz (23–25 March off): due Mon 6 April 2026
    assert row.due_on == date(2026, 4, 6)
    assert (row.account_id, row.handled_by, row.channel) == (
        someone["id"], support.account_id, "letter"
    )  # fmt: skip
    # bad input: messages beside the fields, nothing logged
    bad = await client.post(
        "/ops/requests",
        data=form(csrf, kind="sell", channel="pigeon", received_on="2999-01-01", requester=""),
    )
    assert bad.status_code == 422
    assert bad.text.count('class="field-error"') >= 3
    garbage = await client.post("/ops/requests", data=form(csrf, received_on="yesterday"))
    assert garbage.status_code == 422


@pytest.mark.policy("8.6")
async def test_support_answers_but_only_privacy_closes_or_discloses(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    csrf = await sign_in(client, support)
    someone = await person(owner_session)
    request_id = await owner_session.scalar(
        text(
            "INSERT INTO data_requests (account_id, kind, channel, due_on) "
            "VALUES (:a, 'access', 'email', current_date + 5) RETURNING id"
        ),
        {"a": someone["id"]},
    )
    await owner_session.commit()
    answer = "Ваша копия данных во вложении. Сіздің деректеріңіздің көшірмесі."
    done = await client.post(
        f"/ops/requests/{request_id}/answer",
        data=form(csrf, status="in_progress", answer=answer, send="1"),
        follow_redirects=False,
    )
    assert done.status_code == 303
    sent = (
        await owner_session.execute(
            text(
                "SELECT address, channel, locale, payload FROM notifications "
                "WHERE event = 'data_request.answered' AND address = :e"
            ),
            {"e": someone["email"]},
        )
    ).one()
    await owner_session.commit()
    assert (sent.address, sent.channel, sent.locale) == (someone["email"], "email", "kk")
    assert sent.payload["answer"] == answer
    closing = await client.post(
        f"/ops/requests/{request_id}/answer", data=form(csrf, status="done", answer=answer)
    )
    assert closing.status_code == 403
    assert (await client.get("/ops/disclosures/new")).status_code == 403
    refused = await client.post("/ops/disclosures", data=form(csrf, contact=someone["email"]))
    assert refused.status_code == 403
    assert (await client.get("/ops/requests/999999999")).status_code == 404


@pytest.mark.policy("5.4")
async def test_a_lawful_disclosure_is_recorded_audited_and_told_unless_the_law_forbids(
    client: httpx.AsyncClient, owner_session: AsyncSession, db: Database,
    privacy_officer: OperatorLogin,
) -> None:  # fmt: skip
    csrf = await sign_in(client, privacy_officer)
    someone = await person(owner_session)
    fields = {"contact": someone["phone"], "authority": "Police Department of Almaty",
              "legal_basis": "Criminal Procedure Code of the Republic of Kazakhstan, art. 122",
              "reference": "No 12-3456 of 1 December 2026", "data_given": "account and bookings",
              "disclosed_on": "2026-12-03"}  # fmt: skip
    made = await client.post("/ops/disclosures", data=form(csrf, **fields))
    assert made.status_code == 200
    assert made.headers["content-type"] == "application/zip"
    digest = hashlib.sha256(made.content).hexdigest()
    with zipfile.ZipFile(io.BytesIO(made.content)) as archive:
        account = json.loads(archive.read("account.json"))
    assert account["email"] == someone["email"]
    record = (
        await owner_session.execute(
            text(
                "SELECT d.id, d.authority, d.legal_basis, d.reference, d.disclosed_on, "
                "d.export_sha256, d.recorded_by, r.kind, r.status FROM lawful_disclosures d "
                "JOIN data_requests r ON r.id = d.data_request_id WHERE d.account_id = :a"
            ),
            {"a": someone["id"]},
        )
    ).one()
    await owner_session.commit()
    assert record.export_sha256 == digest
    assert (record.authority, record.reference) == (fields["authority"], fields["reference"])
    assert record.disclosed_on == date(2026, 12, 3)
    assert (record.recorded_by, record.kind, record.status) == (
        privacy_officer.account_id, "lawful_disclosure", "done"
    )  # fmt: skip
    [entry] = [
        row
        for row in await platform_entries(owner_session, "ops.lawful_disclosure")
        if row.entity_id == record.id
    ]
    assert entry.actor_account_id == privacy_officer.account_id
    assert entry.after["legal_basis"] == fields["legal_basis"]
    assert entry.after["export_sha256"] == digest
    assert await chains_hold(owner_session)
    # the disclosure made no "access" request of the person's own
    kinds = (
        await owner_session.execute(
            text("SELECT kind FROM data_requests WHERE account_id = :a"), {"a": someone["id"]}
        )
    ).scalars().all()  # fmt: skip
    await owner_session.commit()
    assert kinds == ["lawful_disclosure"]

    # one the law forbids telling: recorded with its reason, absent from the person's copy
    secret = {**fields, "reference": "No 99-SECRET", "withheld": "1",
              "withheld_reason": "Criminal Procedure Code art. 201: secrecy of the investigation"}  # fmt: skip
    assert (await client.post("/ops/disclosures", data=form(csrf, **secret))).status_code == 200
    async with db.transaction(account_id=someone["id"]) as session:
        copy = await export_account(session, someone["id"])
    with zipfile.ZipFile(io.BytesIO(copy)) as archive:
        told = json.loads(archive.read("disclosures.json"))
        entries = json.loads(archive.read("audit.json"))
    # nor does an export made for an authority show in the person's audit entries
    assert [e for e in entries if e["action"] == "account.export"] == []
    assert [d["reference"] for d in told] == [fields["reference"]]
    assert told[0]["authority"] == fields["authority"]
    assert "SECRET" not in copy.decode("latin-1")

    # bad input: 422 with the fields named, nothing recorded
    bad = await client.post(
        "/ops/disclosures",
        data=form(csrf, **{**fields, "authority": "", "disclosed_on": "2999-01-01",
                           "withheld": "1", "withheld_reason": ""}),
    )  # fmt: skip
    assert bad.status_code == 422 and bad.text.count('class="field-error"') >= 3
    unknown = await client.post(
        "/ops/disclosures", data=form(csrf, **{**fields, "contact": "nobody-y@example.com"})
    )
    assert unknown.status_code == 422


@pytest.fixture
async def worker_engine(database: DatabaseUrls) -> Any:
    engine = create_async_engine(to_sqlalchemy(database.worker), poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.mark.policy("8.6")
async def test_the_daily_reminder_names_what_falls_due_once_a_day(
    owner_session: AsyncSession, worker_engine: AsyncEngine, support: OperatorLogin,
    privacy_officer: OperatorLogin,
) -> None:  # fmt: skip
    # Monday 15 March 2027, 09:00 in Almaty: due within 2 business days is up to Wed 17 March
    now = datetime(2027, 3, 15, 4, 0, tzinfo=UTC)
    ids = {}
    for name, due in (("due", date(2027, 3, 17)), ("later", date(2027, 3, 18))):
        ids[name] = await owner_session.scalar(
            text(
                "INSERT INTO data_requests (kind, channel, due_on) "
                "VALUES ('access', 'email', :due) RETURNING id"
            ),
            {"due": due},
        )
    await owner_session.commit()
    assert await ops_reminders.remind(worker_engine, now) >= 2
    assert await ops_reminders.remind(worker_engine, now) == 0  # twice a day: once
    rows = (
        await owner_session.execute(
            text(
                "SELECT account_id, address, payload FROM notifications "
                "WHERE event = 'ops.requests_due' AND account_id = ANY(:ops) "
                "AND idempotency_key LIKE :key"
            ),
            {"ops": [support.account_id, privacy_officer.account_id], "key": "%:2027-03-15"},
        )
    ).all()
    await owner_session.commit()
    assert {r.address for r in rows} == {support.email, privacy_officer.email}
    for row in rows:
        listed = {r["id"] for r in row.payload["requests"]}
        assert ids["due"] in listed and ids["later"] not in listed
