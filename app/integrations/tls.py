"""TLS for every connection PoZapisi opens to an outside service."""

from __future__ import annotations

import ssl


def outbound_tls_context(min_version: str) -> ssl.SSLContext:
    """Certificate-verifying client context refusing anything older than ``min_version``.

    Policy 10.1 promises TLS 1.3 where the provider supports it; OUTBOUND_TLS_MIN=1.2 is the
    documented escape hatch for a provider that does not.
    """
    context = ssl.create_default_context()
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    return context
