from __future__ import annotations

from tests.integration.runtime import aclient, client, deploy, workers

__all__ = ["aclient", "client", "deploy", "workers"]
