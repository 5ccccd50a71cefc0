"""A local server that answers GET requests with recorded venue answers, unchanged, so a real ccxt
client loads a venue's markets through its own request and parsing path (``load_markets``) from a
recorded file, e.g. Bybit's instruments-info answer for xStocks.

An answer is matched by path and by the query parameters it was recorded for (a request may carry
more); anything unmatched is HTTP 404 naming the request. What this module may not do: answer
what was not recorded, or listen beyond 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from connectors.sandbox.exchange_http import LocalHttpServer


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    path: str  # "/v5/market/instruments-info"
    body: Any  # the JSON answer as recorded
    query: Mapping[str, str] = field(default_factory=dict)  # parameters it was recorded for

    @classmethod
    def from_file(
        cls, path: str, file: Path, query: Mapping[str, str] | None = None
    ) -> RecordedAnswer:
        return cls(path=path, body=json.loads(file.read_text()), query=dict(query or {}))


class RecordedVenue(LocalHttpServer):
    """Serves ``answers``; ``requests`` lists every path and query asked, in order."""

    def __init__(self, answers: list[RecordedAnswer], *, port: int = 0) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, str]]] = []
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._answer)
        super().__init__(app, port=port)

    async def _answer(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append((request.path, query))
        for answer in self.answers:
            if answer.path == request.path and all(
                query.get(key) == value for key, value in answer.query.items()
            ):
                return web.json_response(answer.body)
        return web.json_response({"error": f"no recorded answer for {request.path_qs}"}, status=404)
