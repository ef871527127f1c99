"""All tables. Importing this module registers every model on ``Base.metadata``."""

from .accounts import Account
from .audit import AuditChainHead, AuditDetails, AuditLog, SecurityEvent
from .auth import AccountToken, OtpChallenge, Session
from .base import Base
from .billing import Invoice, Payment, Plan, Subscription
from .bookings import Booking, Message
from .businesses import Business, Invitation, Location, Membership
from .catalog import Service, Staff, StaffService
from .clients import Client
from .feeds import CalendarFeed
from .operators import LawfulDisclosure, Operator, OperatorRecoveryCode
from .outbox import Notification
from .policy_notices import PolicyAnnouncement, PolicyNotice
from .privacy import Consent, ConsentTechnical, DataRequest, PolicyVersion
from .schedule import Holiday, ScheduleOverride, TimeOff, WorkingHours

__all__ = [
    "Account", "AccountToken", "AuditChainHead", "AuditDetails", "AuditLog", "Base", "Booking", "Business",
    "CalendarFeed", "Client", "Consent", "ConsentTechnical", "DataRequest", "Holiday", "Invitation", "Invoice", "LawfulDisclosure", "Location",
    "Membership", "Message", "Notification", "Operator", "OperatorRecoveryCode", "OtpChallenge", "Payment", "Plan", "PolicyAnnouncement", "PolicyNotice", "PolicyVersion",
    "ScheduleOverride", "SecurityEvent", "Service", "Session", "Staff", "StaffService",
    "Subscription", "TimeOff", "WorkingHours",
]  # fmt: skip
