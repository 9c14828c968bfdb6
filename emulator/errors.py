"""Error answers of the emulated cloud."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, detail: str) -> web.Response:
    """Answer an error the way the cloud's FastAPI server does."""
    return web.json_response({"detail": detail}, status=status)
