"""Every new table is ready to be sharded by business (docs/scaling.md, "The rule for new
tables"): read from the SQLAlchemy models alone, no database.

A tenant table (one with ``business_id``) keeps ``business_id`` NOT NULL, first in its primary
key and first in every unique and exclusion key, and names it in every foreign key to another
tenant table: that is what Citus asks of a table distributed by ``business_id``. A table
without ``business_id`` is a platform table and must be classified (reference or local) in
``PLATFORM_TABLES``, so a new one is a decision written down, not an accident.

Today's schema predates the rule: its departures are listed once in ``KNOWN`` (each is a line
of the table in docs/scaling.md). Nothing may be added there for a new table; a departure that
is fixed must leave the list (the test says so), so the list only shrinks.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ExcludeConstraint

import app.models  # noqa: F401  (registers every model on the metadata)
from app.models.base import Base

TENANT = "business_id"

# docs/scaling.md, "Every table": tables without business_id, and where each would live
PLATFORM_TABLES = {
    # reference tables (one copy on every node)
    "businesses": "reference",
    "accounts": "reference",
    "consents": "reference",
    "policy_versions": "reference",
    "plans": "reference",
    # local tables (on the coordinator)
    "account_tokens": "local",
    "sessions": "local",
    "otp_challenges": "local",
    "security_events": "local",
    "rate_limit_counters": "local",
    "consent_technical": "local",
    "data_requests": "local",
    "lawful_disclosures": "local",
    "operators": "local",
    "operator_recovery_codes": "local",
    "policy_announcements": "local",
    "policy_notices": "local",
    "invoice_counters": "local",
    # distributed by its chain key, which is a business id: renamed business_id when sharding
    "audit_chain_heads": "distributed",
}

# tenant tables kept local on the coordinator as a whole (the platform's billing ledger: one
# gap-free numbering of invoices, docs/scaling.md): the key rules do not apply to them
LOCAL_TENANT_TABLES = {
    "billing_profiles",
    "subscriptions",
    "invoices",
    "payments",
    "payment_orders",
}

# today's departures from the rule, as (table, what, name); docs/scaling.md lists the change
# each needs. Never add a line for a new table.
KNOWN = {
    ("audit_details", "nullable", "business_id"),
    ("audit_details", "primary key", "pk_audit_details"),
    ("audit_details", "foreign key", "fk_audit_details_audit_id_audit_log"),
    ("audit_log", "nullable", "business_id"),
    ("audit_log", "primary key", "pk_audit_log"),
    ("audit_log", "unique", "uq_audit_log_chain_seq"),
    ("bookings", "primary key", "pk_bookings"),
    ("bookings", "exclusion", "no_double_booking"),
    ("bookings", "unique", "uq_bookings_public_code"),
    ("bookings", "unique", "uq_bookings_idempotency"),
    ("bookings", "foreign key", "fk_bookings_rescheduled_from_id_bookings"),
    ("calendar_feeds", "primary key", "pk_calendar_feeds"),
    ("calendar_feeds", "unique", "uq_calendar_feeds_token_hash"),
    ("clients", "primary key", "pk_clients"),
    ("holidays", "primary key", "pk_holidays"),
    ("invitations", "primary key", "pk_invitations"),
    ("invitations", "unique", "uq_invitations_token_hash"),
    ("locations", "primary key", "pk_locations"),
    ("memberships", "primary key", "pk_memberships"),
    ("memberships", "foreign key", "fk_memberships_staff_id_staff"),
    ("messages", "primary key", "pk_messages"),
    ("messages", "foreign key", "fk_messages_booking_id_bookings"),
    ("notifications", "nullable", "business_id"),
    ("notifications", "primary key", "pk_notifications"),
    ("notifications", "unique", "uq_notifications_idempotency_key"),
    ("notifications", "foreign key", "fk_notifications_booking_id_bookings"),
    ("schedule_overrides", "primary key", "pk_schedule_overrides"),
    ("services", "primary key", "pk_services"),
    ("staff", "primary key", "pk_staff"),
    ("staff_services", "primary key", "pk_staff_services"),
    ("time_off", "primary key", "pk_time_off"),
    ("working_hours", "primary key", "pk_working_hours"),
}


def _key(element: object) -> str:
    return element.name if isinstance(element, sa.Column) else str(element)


def _excluded_with_equality(constraint: ExcludeConstraint) -> list[str]:
    """The plain columns an exclusion constraint compares with ``=`` (what Citus accepts for the
    distribution column), in order."""
    return [
        c.name
        for c in constraint.columns
        if constraint.operators.get(c.name) == "=" and c.name in constraint.table.c
    ]


def departures(metadata: sa.MetaData) -> set[tuple[str, str, str]]:
    """Every place where a table of ``metadata`` breaks the rule, as (table, what, name)."""
    tenant = {t.name for t in metadata.tables.values() if TENANT in t.c}
    found: set[tuple[str, str, str]] = set()
    for table in metadata.tables.values():
        if table.name not in tenant:
            if table.name not in PLATFORM_TABLES:
                found.add((table.name, "no business_id and not classified", table.name))
            continue
        if table.name in LOCAL_TENANT_TABLES:
            continue
        if table.c[TENANT].nullable:
            found.add((table.name, "nullable", TENANT))
        pk = [c.name for c in table.primary_key.columns]
        if pk[:1] != [TENANT]:
            found.add((table.name, "primary key", f"pk_{table.name}"))
        for constraint in table.constraints:
            if isinstance(constraint, ExcludeConstraint):
                if _excluded_with_equality(constraint)[:1] != [TENANT]:
                    found.add((table.name, "exclusion", str(constraint.name)))
            elif isinstance(constraint, sa.UniqueConstraint):
                if [c.name for c in constraint.columns][:1] != [TENANT]:
                    found.add((table.name, "unique", str(constraint.name)))
            elif (
                isinstance(constraint, sa.ForeignKeyConstraint)
                and constraint.referred_table.name in tenant
            ):
                pairs = {(e.parent.name, e.column.name) for e in constraint.elements}
                if (TENANT, TENANT) not in pairs:
                    found.add((table.name, "foreign key", str(constraint.name)))
        for index in table.indexes:
            if index.unique and [_key(e) for e in index.expressions][:1] != [TENANT]:
                found.add((table.name, "unique", str(index.name)))
    return found


def test_new_tables_follow_the_tenant_key_rule() -> None:
    new = departures(Base.metadata) - KNOWN
    assert not new, (
        "tables that could not be distributed by business_id (docs/scaling.md, 'The rule for "
        f"new tables'): {sorted(new)}"
    )


def test_the_known_departures_are_still_there() -> None:
    """A departure fixed since is taken off KNOWN, so the list only shrinks."""
    gone = KNOWN - departures(Base.metadata)
    assert not gone, f"fixed, take them off KNOWN and docs/scaling.md: {sorted(gone)}"


def test_platform_tables_exist_and_lack_business_id() -> None:
    tables = Base.metadata.tables
    assert {n for n in PLATFORM_TABLES if n not in tables} == set()
    assert {n for n in PLATFORM_TABLES if TENANT in tables[n].c} == set()
    assert {n for n in LOCAL_TENANT_TABLES if TENANT not in tables[n].c} == set()


def test_the_check_sees_a_table_that_breaks_the_rule() -> None:
    """The rule can fail: a scratch tenant table with a plain id key, a global unique code, an
    exclusion without the business and a foreign key to a tenant table without it, and a
    platform table nobody classified, each reported."""
    scratch = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(scratch)
    bad = sa.Table(
        "scratch_visits",
        scratch,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(TENANT, sa.BigInteger, nullable=True),
        sa.Column("staff_id", sa.BigInteger),
        sa.Column("booking_id", sa.BigInteger, sa.ForeignKey("bookings.id")),
        sa.Column("code", sa.String(8), unique=True),
        sa.Column("period", sa.dialects.postgresql.TSTZRANGE),
        ExcludeConstraint(("staff_id", "="), ("period", "&&"), name="scratch_no_overlap"),
    )
    sa.Table("scratch_platform", scratch, sa.Column("id", sa.BigInteger, primary_key=True))
    found = departures(scratch) - KNOWN
    kinds = {(table, what) for table, what, _name in found}
    assert kinds == {
        (bad.name, "nullable"),
        (bad.name, "primary key"),
        (bad.name, "unique"),
        (bad.name, "exclusion"),
        (bad.name, "foreign key"),
        ("scratch_platform", "no business_id and not classified"),
    }
