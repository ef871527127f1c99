"""E-mail over SMTP (aiosmtplib): multipart text + HTML, STARTTLS with verified certificates.

``SMTP_URL``: ``smtp://user:password@host:587`` (STARTTLS) or ``smtps://…:465`` (TLS from the
first byte). STARTTLS is required, except to a loopback relay (a local MTA or the tests' server):
that traffic never leaves the machine, so TLS is used there only when the server offers it.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from workers.channels import (
    INVALID_ADDRESS,
    MISCONFIGURED,
    NETWORK,
    REJECTED,
    UNAVAILABLE,
    ChannelConfigError,
    PermanentError,
    Rendered,
    TransientError,
    is_loopback,
    safe_detail,
)


class EmailChannel:
    name = "email"

    def __init__(
        self, smtp_url: str, *, mail_from: str, timeout: float, tls: ssl.SSLContext
    ) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ChannelConfigError("SMTP_URL must look like smtp://user:password@host:587")
        self._host = parts.hostname
        self._implicit_tls = parts.scheme == "smtps"
        self._port = parts.port or (465 if self._implicit_tls else 587)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        # None = STARTTLS when offered (loopback only); True = refuse a server without it
        self._start_tls: bool | None = (
            False if self._implicit_tls else (None if is_loopback(self._host) else True)
        )
        self._mail_from = mail_from
        self._domain = parseaddr(mail_from)[1].rpartition("@")[2] or "pozapisi.kz"
        self._timeout = timeout
        self._tls = tls

    def compose(self, address: str, message: Rendered) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._mail_from
        email["To"] = address
        email["Subject"] = message.subject
        email["Message-ID"] = make_msgid(domain=self._domain)
        email.set_content(message.text)
        email.add_alternative(message.email_html, subtype="html")
        return email

    async def send(self, address: str, message: Rendered) -> str | None:
        if "@" not in address or any(c in address for c in "\r\n <>"):
            raise PermanentError(INVALID_ADDRESS, "not an e-mail address")
        email = self.compose(address, message)
        try:
            await aiosmtplib.send(
                email,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._implicit_tls,
                start_tls=self._start_tls,
                tls_context=self._tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = f"recipient refused ({', '.join(map(str, codes))})"
            if all(code >= 500 for code in codes):
                raise PermanentError(INVALID_ADDRESS, detail) from None
            raise TransientError(UNAVAILABLE, detail) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TransientError(MISCONFIGURED, f"authentication failed ({exc.code})") from None
        except aiosmtplib.SMTPNotSupported as exc:
            # no STARTTLS offered by a remote server: never fall back to clear text
            raise TransientError(
                MISCONFIGURED, safe_detail(str(exc), self._password or "")
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.code}"
            if exc.code >= 500:
                raise PermanentError(REJECTED, detail) from None
            raise TransientError(UNAVAILABLE, detail) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientError(NETWORK, type(exc).__name__) from None
        return str(email["Message-ID"])

    async def aclose(self) -> None:
        return None
