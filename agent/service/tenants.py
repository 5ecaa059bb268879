"""Who may see what: bearer tokens and Slack workspaces or channels scoped to tenants.

A tenant owns outputs (the store's ``outputs.tenant_id``), and through them the evaluations
of those outputs and their verdicts. ``FOREST_API_TOKEN`` opens every tenant;
``FOREST_API_TOKENS`` maps the sha256 hex digest of each further token to the tenants it
opens (``"*"``: all of them), so the tokens themselves are never stored. A presented token
is hashed and compared with :func:`hmac.compare_digest` against every entry.
``FOREST_SLACK_TENANTS`` maps a Slack channel id or workspace (team) id to tenants the same
way; a channel's entry wins over its workspace's, and once the mapping is set a workspace or
channel it does not name sees no tenant.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from agent.settings import Settings

__all__ = ["ALL_TENANTS", "EVERY_TENANT", "Access", "TokenTable", "slack_access", "token_digest"]

ALL_TENANTS = "*"


@dataclass(frozen=True)
class Access:
    """The tenants a caller may see; ``tenants=None`` is every tenant."""

    tenants: frozenset[str] | None

    @property
    def every_tenant(self) -> bool:
        return self.tenants is None

    def allows(self, tenant: str | None) -> bool:
        """Whether the caller may see a tenant's outputs (``None``: an unknown output, which
        only an every-tenant caller may see)."""
        return self.tenants is None or (tenant is not None and tenant in self.tenants)

    def describe(self) -> str:
        return "every tenant" if self.tenants is None else ", ".join(sorted(self.tenants))


EVERY_TENANT = Access(None)


def _access(tenants: Iterable[str]) -> Access:
    tenants = frozenset(tenants)
    return EVERY_TENANT if ALL_TENANTS in tenants else Access(tenants)


def token_digest(token: str) -> str:
    """What ``FOREST_API_TOKENS`` holds for ``token``: its sha256 hex digest."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenTable:
    """The bearer tokens ``settings`` accepts and what each one opens."""

    def __init__(self, settings: Settings) -> None:
        single = settings.api_token.get_secret_value() if settings.api_token else None
        self._single = single.encode() if single is not None else None
        self._scoped = [
            (digest.encode(), _access(tenants))
            for digest, tenants in (settings.api_tokens or {}).items()
        ]

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a bearer token at all."""
        return self._single is not None or bool(self._scoped)

    def lookup(self, given: str) -> Access | None:
        """What ``given`` opens; None for a token this table does not hold."""
        found: Access | None = None
        if self._single is not None and hmac.compare_digest(given.encode(), self._single):
            found = EVERY_TENANT
        digest = token_digest(given).encode()
        for expected, access in self._scoped:  # every entry compared: no early exit
            if hmac.compare_digest(digest, expected) and found is None:
                found = access
        return found


def slack_access(settings: Settings, team_id: str | None, channel_id: str | None) -> Access:
    """The tenants a Slack channel in a workspace may investigate (every tenant when
    ``FOREST_SLACK_TENANTS`` is unset)."""
    mapping = settings.slack_tenants
    if not mapping:
        return EVERY_TENANT
    for key in (channel_id, team_id):
        if key and key in mapping:
            return _access(mapping[key])
    return Access(frozenset())
