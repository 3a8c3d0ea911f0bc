"""Connection URLs with secrets in them: filled from the environment, refused when written in a file, redacted.

A URL in params.yaml names its secrets as `${VAR}` references, never as text: a password in the user info
(`postgres://user:${PW}@host/db`) or a secret-looking query parameter (`?password=${PW}`, `token`, `key`, ...).
References are filled from the environment and percent-encoded where they land in the user info or a query value,
so a password holding `@ / : ? # % +` still parses. Every URL or message shown to a person goes through
`redact`, which hides the user info's password, every secret-looking query value, and any secret value it knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, unquote_plus

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_PARAM = re.compile(r"(?i)(pass|pwd|secret|token|key|credential|auth)")
_QUERY_PAIR = re.compile(r"([?&;])([^=&#;]*)=([^&#;]*)")
# A URL inside free text (an engine's error message): scheme, then anything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
MASK = "***"


class SecretInFile(ValueError):
    """A URL in a file carries a secret as text instead of a `${VAR}` reference."""


def _split(url: str) -> tuple[str, str | None, str] | None:
    """(scheme://, user info or None, the rest) — the user info ends at the last `@` so a raw `@` in a password
    stays inside it; None for a string that is not a URL."""
    match = _SCHEME.match(url)
    if not match:
        return None
    scheme, rest = match.groups()
    at = rest.rfind("@")
    if at < 0:
        return scheme, None, rest
    return scheme, rest[:at], rest[at + 1:]


def find_literal_secrets(url: str) -> list[str]:
    """Where a URL written in a file holds a secret as text: 'the password', 'query parameter NAME'."""
    parts = _split(url)
    if parts is None:
        return []
    _, userinfo, rest = parts
    found = []
    if userinfo is not None and ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        if password and not _REFERENCE.fullmatch(password):
            found.append("the password")
    for _, name, value in _QUERY_PAIR.findall(rest):
        if _SECRET_PARAM.search(unquote(name)) and value and not _REFERENCE.fullmatch(value):
            found.append(f"query parameter {unquote(name)!r}")
    return found


def fill_references(url: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Fill `${VAR}` references from `environ`; return the URL and the secret values used (for redaction).

    Values landing in the user info or in a query value are percent-encoded, so any character survives parsing.

    Raises:
        KeyError: a referenced variable is not set (its name is the error's argument).
    """
    missing = [name for name in _REFERENCE.findall(url) if name not in environ]
    if missing:
        raise KeyError(", ".join(missing))
    parts = _split(url)
    if parts is None:
        return _REFERENCE.sub(lambda m: environ[m.group(1)], url), []
    scheme, userinfo, rest = parts
    used: list[str] = []

    def encoded(match: re.Match) -> str:
        used.append(environ[match.group(1)])
        return quote(environ[match.group(1)], safe="")

    if userinfo is not None:
        userinfo = _REFERENCE.sub(encoded, userinfo)
    head, sep, query = rest.partition("?")
    head = _REFERENCE.sub(lambda m: environ[m.group(1)], head)
    query = _REFERENCE.sub(encoded, query)
    filled = scheme + (f"{userinfo}@" if userinfo is not None else "") + head + sep + query
    return filled, used


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every URL's password and secret query values, and every known secret value, replaced by ***."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, MASK)
    return _URL_IN_TEXT.sub(lambda m: _redact_url(m.group(0)), text)


def _redact_url(url: str) -> str:
    parts = _split(url)
    if parts is None:
        return url
    scheme, userinfo, rest = parts
    if userinfo is not None:
        user = userinfo.split(":", 1)[0]
        userinfo = f"{user}:{MASK}" if ":" in userinfo else user
    rest = _QUERY_PAIR.sub(
        lambda m: f"{m.group(1)}{m.group(2)}={MASK}" if _SECRET_PARAM.search(unquote(m.group(2))) else m.group(0),
        rest)
    return scheme + (f"{userinfo}@" if userinfo is not None else "") + rest


def password_forms(url: str) -> list[str]:
    """The password a URL carries as written and as decoded, for redacting messages that echo either."""
    parts = _split(url)
    if parts is None or parts[1] is None or ":" not in parts[1]:
        return []
    raw = parts[1].split(":", 1)[1]
    return [form for form in {raw, unquote(raw), unquote_plus(raw)} if form]
