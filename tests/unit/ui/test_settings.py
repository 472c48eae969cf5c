"""Safe by default: who may bind where, token rules, loopback names, the viewer's URL."""

from __future__ import annotations

import pytest

from pgflow.errors import ConfigurationError
from pgflow.ui.security import is_loopback
from pgflow.ui.settings import MIN_TOKEN_LENGTH, UiSettings

TOKEN = "t" * MIN_TOKEN_LENGTH


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]", "app.localhost"]
)
def test_loopback_names(host: str) -> None:
    assert is_loopback(host)
    UiSettings(host=host).check()


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.10", "example.com", "evil.localhost.example", ""]
)
def test_any_other_bind_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match="without --token") as caught:
        UiSettings(host=host).check()
    assert caught.value.hint and "--token" in caught.value.hint
    UiSettings(host=host, token=TOKEN).check()


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="too short"):
        UiSettings(token="secret").check()


def test_the_url_carries_the_token_only_when_asked_and_quoted() -> None:
    settings = UiSettings(host="::1", port=9000, token="a/b+c" + TOKEN)
    assert settings.url() == "http://[::1]:9000/"
    assert settings.url(with_token=True) == f"http://[::1]:9000/?token=a%2Fb%2Bc{TOKEN}"
    assert settings.names.token == "pgflow_ui_token_9000"
