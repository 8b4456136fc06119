"""Keeping configured secrets out of what people and traces see.

One redaction serves every output: CLI error lines, span status messages and span
data. It replaces each value configured as secret (the Langfuse secret key, the
database password) and any password written in a connection string.
"""

from __future__ import annotations

from mas.errors import SettingsError
from mas.settings import Settings, get_settings
from mas_graphs.checkpoints.savers import dsn_passwords, redact_dsn

MIN_SECRET_CHARS = 4  # shorter "secrets" would blank out ordinary words


def configured_secrets(settings: Settings) -> list[str]:
    """Every value configured as secret: the Langfuse secret key, the database password."""
    found = []
    if settings.langfuse_secret_key is not None:
        found.append(settings.langfuse_secret_key.get_secret_value())
    if settings.database_url is not None:
        found += dsn_passwords(settings.database_url.get_secret_value())
    return [secret for secret in found if len(secret) >= MIN_SECRET_CHARS]


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every configured secret, and any password in a connection string,
    replaced by `***`."""
    if secrets is None:
        try:
            secrets = configured_secrets(get_settings())
        except SettingsError:  # its message names a variable, never quotes its value
            secrets = []
    for secret in secrets:
        text = text.replace(secret, "***")
    return redact_dsn(text)
