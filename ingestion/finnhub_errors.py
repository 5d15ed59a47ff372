"""The one Finnhub failure the ingestion service cannot retry its way out of: a bad API key.

Both clients raise InvalidApiKey so the service can stop with a message a user can act on,
instead of reconnecting forever against a key Finnhub will never accept.
"""
from __future__ import annotations

DASHBOARD_URL = "https://finnhub.io/dashboard"


class InvalidApiKey(RuntimeError):
    """Finnhub refused the key. str() is one line and never contains the key."""

    def __init__(self, how: str):
        self.how = " ".join(how.split())  # one line, whatever the server sent
        super().__init__(
            f"Finnhub rejected the API key ({self.how}): "
            f"set FINNHUB_API_KEY to a valid key from {DASHBOARD_URL}"
        )
