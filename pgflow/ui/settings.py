"""The viewer's settings and the rules a start must pass (bind address, token)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import quote

from pgflow.errors import ConfigurationError
from pgflow.ui.security import Names, is_loopback

__all__ = ["MIN_TOKEN_LENGTH", "UiSettings"]

MIN_TOKEN_LENGTH: Final = 16
_TOKEN_HINT = (
    "pass a long random token, e.g. --token \"$(python3 -c 'import secrets; "
    "print(secrets.token_urlsafe(24))')\" (or set PGFLOW_UI_TOKEN)"
)


@dataclass(frozen=True, slots=True)
class UiSettings:
    """How ``pgflow ui`` serves.

    Attributes:
        host: the address to bind; anything but a loopback address needs ``token``.
        port: the TCP port (0: any free port).
        read_only: no actions (retry, cancel): for the ``pgflow_reader`` role.
        token: the secret every request must carry, or None (loopback only).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    read_only: bool = False
    token: str | None = None

    def check(self) -> None:
        """Refuse settings that would expose the viewer.

        Raises:
            ConfigurationError: a non-loopback bind without a token, or a short token.
        """
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"the --token is too short ({len(self.token)} characters; at least "
                f"{MIN_TOKEN_LENGTH} are needed)",
                hint=_TOKEN_HINT,
            )
        if self.token is None and not is_loopback(self.host):
            raise ConfigurationError(
                f"pgflow ui refuses to listen on {self.host} without --token: anyone who "
                "can reach that address could read every run and cancel it",
                hint=f"{_TOKEN_HINT}, or keep the default --host 127.0.0.1",
            )

    @property
    def names(self) -> Names:
        """The cookie names for this port."""
        return Names(self.port)

    def with_port(self, port: int) -> UiSettings:
        """The same settings on another port (the one actually bound)."""
        return replace(self, port=port)

    def url(self, with_token: bool = False) -> str:
        """The viewer's address, e.g. ``http://127.0.0.1:8765/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?token={quote(self.token, safe='')}" if with_token and self.token else ""
        return f"http://{host}:{self.port}/{query}"
