"""The privacy policy lists what personal data PoZapisi keeps (section 2) and nothing else (2.x).

``INVENTORY`` classifies every column of every table. A column added to the schema fails the
test until it is classified here — and if it is personal, until the policy covers it (section 2
of policy/POLICY-CLAUSES.md; the comment after each personal column names the clause).

What "personal" means here: the value, in its row, tells something about a natural person — who
they are (name, contacts, identifiers issued by others such as a Telegram id), what they did,
booked or wrote, what others wrote about them, their device and network (IP, user agent).
Internal surrogate and foreign keys, statuses, settings of a business and bookkeeping timestamps
are "not personal": they say nothing until joined to a personal column, which is listed.
"""

from __future__ import annotations

import asyncpg
import pytest

from app.db.bootstrap import DatabaseUrls
from app.db.urls import to_libpq

P = "personal"
N = "not personal"

INVENTORY: dict[str, dict[str, str]] = {
    "accounts": {
        "id": N,
        "name": P,  # 2.1
        "phone": P,  # 2.2
        "phone_verified_at": N,
        "email": P,  # 2.3
        "email_verified_at": N,
        "telegram_id": P,  # 2.4
        "allows_write_to_pm": P,  # 2.4: what the person allowed in Telegram
        "password_hash": P,  # 2.3 sign-in credential, bcrypt (10.2)
        "locale": N,
        "locale_chosen": N,
        "avatar": P,  # 2.5
        "is_operator": N,
        "created_at": N,
        "deleted_at": N,
    },
    "audit_chain_heads": {"chain_key": N, "seq": N, "hash": N},
    "audit_details": {
        "audit_id": N,
        "business_id": N,
        "ip": P,  # 2.6
        "user_agent": P,  # 2.6
        "before": P,  # 2.6: changed values may hold any of the above
        "after": P,  # 2.6
    },
    "audit_log": {
        "id": N,
        "chain_key": N,
        "seq": N,
        "business_id": N,
        "at": N,
        "actor_account_id": N,
        "actor_kind": N,
        "action": N,
        "entity": N,
        "entity_id": N,
        "before_digest": N,
        "after_digest": N,
        "request_id": N,
        "prev_hash": N,
        "hash": N,
    },
    "bookings": {
        "id": N,
        "business_id": N,
        "public_code": N,
        "client_id": N,
        "account_id": N,
        "staff_id": N,
        "service_id": N,
        "period": P,  # 2.5 booking history (5.1: the time)
        "blocked_period": P,  # 2.5 (the time, widened by buffers)
        "starts_at": P,  # 2.5 (the start of period, kept by PostgreSQL for index ranges)
        "status": P,  # 2.5 (attended, cancelled, did not come)
        "source": N,
        "pending_expires_at": N,
        "service_name": P,  # 2.5 (5.1: the chosen service)
        "duration_min": P,  # 2.5
        "price_tiyn": P,  # 2.5
        "comment": P,  # 2.5 correspondence: free text from the client
        "cancel_reason": P,  # 2.5 free text
        "cancelled_by": N,
        "idempotency_key": N,
        "rescheduled_from_id": N,
        "created_at": N,
        "updated_at": N,
    },
    # the business's own public profile and settings
    "businesses": {
        "id": N,
        "slug": N,
        "name": N,
        "timezone": N,
        "currency": N,
        "phone": N,
        "address": N,
        "default_locale": N,
        "auto_confirm": N,
        "pending_ttl_min": N,
        "cancel_deadline_min": N,
        "max_active_bookings_per_client": N,
        "slot_step_min": N,
        "min_notice_min": N,
        "horizon_days": N,
        "observe_public_holidays": N,
        "schedule_version": N,
        "reminder_offsets_min": N,
        "notify_telegram": N,
        "notify_sms": N,
        "notify_email": N,
        "reschedule_deadline_min": N,
        "languages": N,
        "setup_done_at": N,
        "read_only_since": N,  # unpaid past its grace (issue 16)
        "created_at": N,
        "archived_at": N,
    },
    "clients": {
        "id": N,
        "business_id": N,
        "account_id": N,
        "name": P,  # 2.1 (5.1)
        "phone": P,  # 2.2 (5.1)
        "notes": P,  # 5.1: the business's own notes about the person
        "tags": P,  # 5.1: the business's own labels for the person
        "created_at": N,
    },
    "consent_technical": {"consent_id": N, "ip": P, "user_agent": P},  # 2.6
    "consents": {
        "id": N,
        "account_id": N,
        "policy_version": N,
        "purposes": P,  # 3.1: what the person agreed to
        "action": P,  # 3.1: granted or withdrawn
        "channel": N,
        "created_at": N,
    },
    "data_requests": {
        "id": N,
        "account_id": N,
        "kind": P,  # 8.6: what the person asked for
        "status": N,
        "channel": N,
        "details": P,  # 8.6: free-form, may hold anything the person wrote
        "received_at": N,
        "due_on": N,
        "done_at": N,
        "resolution": P,  # 8.6 free text
        "requester": P,  # 8.6: who wrote, as they gave it (a letter, a call), when no account
        "handled_by": N,  # the operator (staff acting in their role)
    },
    "operators": {
        "account_id": N,
        "role": N,
        "totp_secret": N,  # a sealed random key: says nothing about the person
        "totp_last_step": N,
        "created_at": N,
        "disabled_at": N,
    },
    "operator_recovery_codes": {
        "id": N,
        "account_id": N,
        "code_hash": N,  # a digest of a random secret
        "used_at": N,
        "created_at": N,
    },
    "lawful_disclosures": {
        "id": N,
        "data_request_id": N,
        "account_id": N,
        "authority": N,
        "legal_basis": N,
        "reference": N,
        "data_given": P,  # 5.4: what was handed over about the person
        "disclosed_on": P,  # 5.4: when data about the person went to an authority
        "withheld": N,
        "withheld_reason": P,  # 5.4: why the person is not told (about them)
        "export_sha256": N,
        "recorded_by": N,
        "created_at": N,
    },
    "holidays": {"id": N, "business_id": N, "on_date": N, "name": N},
    "invoices": {
        "id": N,
        "business_id": N,
        "subscription_id": N,
        "number": N,
        "amount_tiyn": N,
        "issued_on": N,
        "due_on": N,
        "status": N,
        "retain_until": N,
        # the document as issued (issue 16): PoZapisi's and the business's registered details
        # (name, BIN/IIN, address — business data, as billing_profiles), its lines and totals;
        # a financial document under the 5-year hold (policy 7.3)
        "kind": N,
        "credits_invoice_id": N,
        "currency": N,
        "seller": N,
        "buyer": N,
        "lines": N,
        "vat_rate": N,
        "subtotal_tiyn": N,
        "vat_tiyn": N,
        "period_start": N,
        "period_end": N,
        "reason": N,
        "issued_at": N,
    },
    "invoice_counters": {"year": N, "last_number": N},
    "locations": {"id": N, "business_id": N, "name": N, "address": N, "archived_at": N},
    "memberships": {
        "id": N,
        "business_id": N,
        "account_id": N,
        "role": N,
        "staff_id": N,
        "notify_bookings": N,
        "created_at": N,
    },
    "messages": {
        "id": N,
        "business_id": N,
        "client_id": N,
        "booking_id": N,
        "sender": N,
        "author_account_id": N,
        "body": P,  # 2.5 correspondence
        "created_at": N,
        "read_at": N,
    },
    "notifications": {
        "id": N,
        "business_id": N,
        "booking_id": N,
        "account_id": N,
        "address": P,  # 2.2 / 2.3: a phone or e-mail to send a code to
        "event": N,
        "channel": N,
        "locale": N,
        "payload": P,  # 2.5: what the message says (booking details)
        "idempotency_key": P,  # 2.2 / 2.3: names the address when there is no account
        "scheduled_at": N,
        "status": N,
        "attempts": N,
        "next_attempt_at": N,
        "last_error": N,
        "delivered_channel": N,
        "provider_message_id": N,
        "sent_at": N,
        "created_at": N,
    },
    "otp_challenges": {
        "id": N,
        "channel": N,
        "destination_hash": P,  # 2.2 / 2.3: a keyed hash of the phone or e-mail
        "code_hash": N,
        "purpose": N,
        "account_id": N,
        "attempts": N,
        "expires_at": N,
        "consumed_at": N,
        "ip": P,  # 2.6
        "created_at": N,
    },
    "payments": {
        "id": N,
        "business_id": N,
        "invoice_id": N,
        "amount_tiyn": N,
        "provider": N,
        "provider_ref": N,
        "paid_at": N,
        "retain_until": N,
        # what the provider reported (issue 16); never the card or its holder (policy 5.3)
        "kind": N,
        "status": N,
        "currency": N,
        "parent_ref": N,
        "flag": N,
        "reason": N,
        "received_at": N,
    },
    "payment_orders": {
        "id": N,
        "business_id": N,
        "invoice_id": N,
        "provider": N,
        "order_ref": N,
        "url": N,
        "amount_tiyn": N,
        "currency": N,
        "created_at": N,
        "retain_until": N,
    },
    "plans": {
        "id": N,
        "code": N,
        "name": N,
        "price_tiyn": N,
        "max_staff": N,
        "price_year_tiyn": N,
        "features": N,
        "sort_order": N,
        "trial_days": N,
    },
    # the business as a buyer on its invoices (issue 16): a company's or an individual
    # entrepreneur's registered name, BIN/IIN and address as the state business register
    # publishes them — business data, kept while the business exists; each invoice keeps its
    # own copy under the 5-year hold (policy 7.3)
    "billing_profiles": {
        "business_id": N,
        "legal_name": N,
        "bin_iin": N,
        "address": N,
        "vat_payer": N,
        "updated_at": N,
    },
    "policy_versions": {
        "id": N,
        "version": N,
        "digests": N,
        "purposes": N,
        "published_at": N,
        "effective_at": N,
        "material": N,
        "summary": N,
    },
    # who was told of which material policy change on which channel (policy 11.1): keys and a
    # channel name; the message itself, with its address, is the notifications row
    "policy_notices": {"policy_version": N, "account_id": N, "channel": N, "created_at": N},
    "policy_announcements": {
        "policy_version": N,
        "after_account_id": N,
        "queued": N,
        "started_at": N,
        "swept_at": N,
    },
    "rate_limit_counters": {
        "bucket": N,
        "key": P,  # 2.6: a keyed digest of an account, Telegram user or network (as above)
        "window_start": N,
        "hits": N,
        "expires_at": N,
    },
    "schedule_overrides": {
        "id": N,
        "business_id": N,
        "staff_id": N,
        "on_date": N,
        "kind": N,
        "start_time": N,
        "end_time": N,
        "note": N,
    },
    "security_events": {
        "id": N,
        "account_id": N,
        "event": P,  # 2.6
        "ip": P,  # 2.6
        "user_agent": P,  # 2.6
        "created_at": N,
    },
    "services": {
        "id": N,
        "business_id": N,
        "name": N,
        "category": N,
        "duration_min": N,
        "price_tiyn": N,
        "buffer_before_min": N,
        "buffer_after_min": N,
        "sort_order": N,
        "capacity": N,
        "created_at": N,
        "archived_at": N,
    },
    "schema_definitions": {  # which SQL source files were applied (app.db.definitions)
        "name": N,
        "checksum": N,
        "applied_at": N,
    },
    "sessions": {
        "id": N,
        "account_id": N,
        "kind": N,
        "csrf_secret": N,
        "created_at": N,
        "expires_at": N,
        "revoked_at": N,
        "last_seen_at": N,
        "ip": P,  # 2.6
        "user_agent": P,  # 2.6
        "chosen_business_id": N,
    },
    "staff": {
        "id": N,
        "business_id": N,
        "account_id": N,
        "name": P,  # 2.1: a master's name, shown on the business's public profile
        "title": N,
        "sort_order": N,
        "photo": P,  # 2.5: a master's photo (optional, removable), on the public profile
        "created_at": N,
        "archived_at": N,
    },
    "account_tokens": {
        "id": N,
        "account_id": N,
        "purpose": N,
        "token_hash": N,  # a digest of a random secret: says nothing about the person
        "target": P,  # 2.3: the new e-mail address a change-of-address link confirms
        "expires_at": N,
        "used_at": N,
        "created_at": N,
    },
    "calendar_feeds": {
        "id": N,
        "business_id": N,
        "staff_id": N,
        "token_hash": N,  # a digest of a random secret: says nothing about the person
        "include_phone": N,
        "created_at": N,
        "revoked_at": N,
    },
    "invitations": {
        "id": N,
        "business_id": N,
        "role": N,
        "staff_id": N,
        "email": P,  # 2.3: the invitee's e-mail, to send the invitation
        "phone": P,  # 2.2: the invitee's phone, to send the invitation
        "token_hash": N,
        "invited_by": N,
        "expires_at": N,
        "accepted_at": N,
        "accepted_by": N,
        "revoked_at": N,
        "created_at": N,
    },
    "staff_services": {
        "business_id": N,
        "staff_id": N,
        "service_id": N,
        "duration_min": N,
        "price_tiyn": N,
    },
    "subscriptions": {
        "id": N,
        "business_id": N,
        "plan_id": N,
        "status": N,
        "current_period_end": N,
        "created_at": N,
        "billing_period": N,
        "current_period_start": N,
        "period_price_tiyn": N,
        "credit_tiyn": N,
        "grace_until": N,
        "open_invoice_id": N,
        "pending_plan_id": N,
        "pending_billing_period": N,
        "pending_period_start": N,
        "reminded_on": N,
        "updated_at": N,
    },
    "time_off": {
        "id": N,
        "business_id": N,
        "staff_id": N,
        "period": N,
        "reason": P,  # free text about a master's absence (may say why: illness, family)
        "created_at": N,
    },
    "working_hours": {
        "id": N,
        "business_id": N,
        "staff_id": N,
        "weekday": N,
        "start_time": N,
        "end_time": N,
    },
}


async def schema_columns(urls: DatabaseUrls) -> list[tuple[str, str, str]]:
    """(table, column, type) of every table and view in schema public that is ours."""
    conn = await asyncpg.connect(to_libpq(urls.owner))
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
            "AND table_name NOT LIKE 'saq\\_%' ORDER BY table_name, ordinal_position"
        )
    finally:
        await conn.close()
    return [(r["table_name"], r["column_name"], r["udt_name"]) for r in rows]


@pytest.mark.policy("2.x")
async def test_every_column_is_classified(database: DatabaseUrls) -> None:
    columns = await schema_columns(database)
    assert len(columns) > 100  # the schema is there
    in_schema = {(t, c) for t, c, _ in columns}
    inventoried = {(t, c) for t, cols in INVENTORY.items() for c in cols}
    unclassified = sorted(f"{t}.{c}" for t, c in in_schema - inventoried)
    gone = sorted(f"{t}.{c}" for t, c in inventoried - in_schema)
    assert unclassified == [], (
        "columns not in the personal-data inventory (classify them in INVENTORY, and if they are "
        f"personal make sure privacy policy section 2 covers them): {unclassified}"
    )
    assert gone == [], f"inventory entries for columns that no longer exist: {gone}"
    assert {v for cols in INVENTORY.values() for v in cols.values()} <= {P, N}


@pytest.mark.policy("2.x")
async def test_inventory_marks_the_obvious_personal_columns(database: DatabaseUrls) -> None:
    """A misclassification the eye may miss: addresses, network and device data are personal."""
    obvious = {"email", "telegram_id", "ip", "user_agent", "avatar", "password_hash"}
    wrong = sorted(
        f"{t}.{c}"
        for t, c, udt in await schema_columns(database)
        if (c in obvious or udt == "inet") and INVENTORY.get(t, {}).get(c) != P
    )
    assert wrong == []


@pytest.mark.policy("5.1")
async def test_client_card_holds_no_email_telegram_or_avatar(database: DatabaseUrls) -> None:
    """The business's card of a person never holds their e-mail, Telegram id or avatar."""
    client_columns = [c for t, c, _ in await schema_columns(database) if t == "clients"]
    assert {"name", "phone"} <= set(client_columns)
    forbidden = [
        c
        for c in client_columns
        if any(word in c.lower() for word in ("mail", "telegram", "tg_", "avatar", "photo"))
    ]
    assert forbidden == []


@pytest.mark.policy("10.3")
async def test_every_table_of_personal_data_forces_row_level_security(
    database: DatabaseUrls,
) -> None:
    """A table that holds a personal column is guarded by row-level security, forced, so no
    role reaches its rows without a policy saying whose they are (tests/integration/test_rls.py
    checks the policies themselves)."""
    personal = sorted(t for t, columns in INVENTORY.items() if P in columns.values())
    assert {"accounts", "consents", "otp_challenges", "security_events"} <= set(personal)
    conn = await asyncpg.connect(to_libpq(database.owner))
    try:
        rows = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind = 'r' AND relrowsecurity AND relforcerowsecurity"
        )
    finally:
        await conn.close()
    guarded = {r["relname"] for r in rows}
    assert "bookings" in guarded  # the query finds forced tables
    assert [t for t in personal if t not in guarded] == []
