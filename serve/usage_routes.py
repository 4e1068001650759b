"""``GET /v1/usage`` (the caller's key, in DeepL's shape plus our fields) and ``GET /metrics`` with per-key
counters appended to vLLM's own.

``/v1/usage`` follows DeepL's ``character_count``/``character_limit``. For a key with a monthly quota
(``characters_per_month``) they are DeepL's: the characters of the current UTC month and the quota. For a key
without one, the period is the minute of the characters-per-minute token bucket: ``character_limit`` is the
key's characters per minute and ``character_count`` how much of that allowance is spent right now (it drains
back at the limit's rate). Either way ``character_count >= character_limit`` means what it means for DeepL:
wait before sending more. ``minute``, ``day`` and ``month`` give each period's figures side by side (a
``character_limit`` of null: no quota for that period), with the time each period resets. Totals since the
key was first used (surviving restarts) are in ``total``.

``/metrics``: vLLM's metrics are served by vLLM; with an ``--api-keys`` file the front process answers the
route itself, fetching vLLM's text (always in the classic Prometheus text format, so that families can be
appended: an OpenMetrics answer ends with ``# EOF``) and appending the ``xplus_key_*`` families. One
scrape target keeps both, and vLLM's families stay exactly as vLLM writes them.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from xplus_release.serve.backend import Backend
from xplus_release.serve.errors import ApiError
from xplus_release.serve.gate import KEY_SCOPE
from xplus_release.serve.metering import Metering
from xplus_release.serve.quotas import Periods
from xplus_release.serve.shared_state import RETRY_AFTER_S, StateUnavailable
from xplus_release.serve.usage import CHARACTERS, REQUESTS, TOKENS, errors_by_status, prometheus_text

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def usage_router(metering: Metering | None, client: httpx.AsyncClient, backend: Backend) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/usage")
    async def usage(request: Request) -> JSONResponse:
        """The calling key's usage (DeepL's ``character_count``/``character_limit``, see the module docstring)."""
        key = request.scope.get(KEY_SCOPE)
        if metering is None or key is None:
            raise ApiError(404, "usage is kept per key only when the server runs with --api-keys FILE")
        try:
            return JSONResponse(usage_body(metering, key))
        except StateUnavailable:
            raise ApiError(503, f"the shared usage store does not answer; retry in {RETRY_AFTER_S} s",
                           {"Retry-After": str(RETRY_AFTER_S)}) from None

    if metering is not None:

        @router.get("/metrics")
        async def metrics() -> Response:
            """vLLM's metrics, then the per-key counters."""
            try:
                upstream = await client.get("/metrics", headers={"Authorization": f"Bearer {backend.api_key}",
                                                                 "Accept": "text/plain"})
            except httpx.HTTPError:
                upstream = None
            vllm_text = upstream.text if upstream is not None and upstream.status_code == 200 else ""
            try:
                ours = prometheus_text(metering.usage.all_totals(), metering.in_flight())
            except StateUnavailable:  # vLLM's families still; ours come back with the shared store
                ours = ""
            return Response(vllm_text + ours, media_type=PROMETHEUS_TEXT)

    return router


def usage_body(metering: Metering, key) -> dict:
    limits = key.limits
    totals = metering.usage.totals(key.name)
    periods = Periods.now()
    day, month = metering.limiter.period_usage(key.name)
    by_period = {
        "minute": {"character_count": metering.limiter.characters_in_use(key.name, limits),
                   "character_limit": limits.characters_per_minute},
        "day": {"character_count": day, "character_limit": limits.characters_per_day,
                "resets_at": _iso(periods.day_end)},
        "month": {"character_count": month, "character_limit": limits.characters_per_month,
                  "resets_at": _iso(periods.month_end)}}
    shown = by_period["month" if limits.characters_per_month else "minute"]
    return {"character_count": shown["character_count"], "character_limit": shown["character_limit"],
            **by_period,
            "key": key.name,
            "limits": limits.model_dump(exclude_none=True),  # quotas not set: shown as null below
            "requests_in_flight": metering.limiter.in_flight(key.name),
            "total": {"requests": totals.get(REQUESTS, 0), "characters": totals.get(CHARACTERS, 0),
                      "generated_tokens": totals.get(TOKENS, 0), "errors": errors_by_status(totals)}}


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
