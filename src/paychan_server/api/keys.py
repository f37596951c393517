"""Typed application keys."""

from __future__ import annotations

from aiohttp import web

from ..domain.service import PayChanService

SERVICE: web.AppKey[PayChanService] = web.AppKey("service", PayChanService)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)
