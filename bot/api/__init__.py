"""The HTTP application: the creators' API, health, public keys; channels mount their routes here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from bot import metrics, workflow
from bot.api.guards import BodyGuard
from bot.api.outputs import file_refused_answer
from bot.api.outputs import router as outputs_router
from bot.api.public import router as public_router
from bot.api.ratelimit import PublicRouteLimit, RateLimited, RateLimits, rate_limited_answer
from bot.api.routes import router
from bot.output_files import FileRefused
from bot.workflow import Desk

log = logging.getLogger(__name__)

_STATUS_OF_REFUSAL: dict[type[workflow.Refused], int] = {
    workflow.NotFound: 404,
    workflow.NotAllowed: 403,
    workflow.AlreadyDecided: 409,
    workflow.NotOpen: 409,
    workflow.TermsChanged: 409,
    workflow.NeedsConfirmation: 409,
    workflow.InvalidInput: 422,
    workflow.IdempotencyConflict: 422,
    workflow.InviteInvalid: 400,
    workflow.OverQuota: 413,
}


def _refusal_answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, workflow.Refused)
    status = next((code for kind, code in _STATUS_OF_REFUSAL.items() if isinstance(error, kind)), 400)
    if isinstance(error, workflow.InvalidInput):
        detail: Any = [{"loc": ["body", e.field], "msg": e.message, "type": e.type} for e in error.errors]
    else:
        detail = error.message
    extra = {k: v for k, v in error.details.items() if isinstance(v, str | int | bool)}
    return JSONResponse({"detail": detail, "code": error.code} | extra, status_code=status)


def _validation_answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return JSONResponse(
            {"detail": "the body is not valid JSON", "code": "malformed_json"}, status_code=400
        )
    detail = [
        {
            "loc": list(p.get("loc", [])),
            "msg": str(p.get("msg", "")).removeprefix("Value error, "),
            "type": p.get("type"),
        }
        for p in problems
    ]
    return JSONResponse({"detail": detail, "code": "invalid_input"}, status_code=422)


def _gone_answer(_request: Request, _error: Exception) -> JSONResponse:
    # The body stopped short: the client went away, or BodyGuard cut it off and has answered 413
    # already (this answer is then dropped). Nothing to log.
    return JSONResponse({"detail": "the body was not received", "code": "malformed_body"}, status_code=400)


def _unexpected_answer(_request: Request, error: Exception) -> JSONResponse:
    # Never a traceback to the caller; the log keeps it for us.
    log.exception("unexpected error", exc_info=error)
    return JSONResponse({"detail": "internal error; it was logged", "code": "internal"}, status_code=500)


def create_api(desk: Desk, limits: RateLimits | None = None) -> FastAPI:
    """Builds the FastAPI app around a desk; channel adapters add their routes afterwards.

    Parameters:
        desk: what every workflow step uses.
        limits: the rate limits (per API key, per client address); the defaults when None.
    """
    limits = limits or RateLimits.default()
    api = FastAPI(
        title="likeness-consent",
        version="0.1.0",
        description="Creators submit likeness-use requests; artists decide in Telegram, agencies in Slack.",
    )
    api.state.desk = desk
    api.state.limits = limits
    api.include_router(router)
    api.include_router(outputs_router)
    api.include_router(public_router)
    api.add_exception_handler(workflow.Refused, _refusal_answer)
    api.add_exception_handler(RequestValidationError, _validation_answer)
    api.add_exception_handler(RateLimited, rate_limited_answer)
    api.add_exception_handler(FileRefused, file_refused_answer)
    api.add_exception_handler(ClientDisconnect, _gone_answer)
    api.add_exception_handler(Exception, _unexpected_answer)
    api.add_middleware(BodyGuard)
    # Added last, so it runs first: a limited caller's body is never read.
    api.add_middleware(PublicRouteLimit, limits=limits)
    api.add_middleware(metrics.CountResponses)  # outermost: counts every answer, 429s included
    api.add_route("/metrics", metrics.metrics_route(desk), methods=["GET"], include_in_schema=False)

    @api.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """200 when the database answers, else 503."""
        if await desk.db.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "database unreachable"}, status_code=503)

    @api.get("/.well-known/likeness-keys.json", tags=["receipts"])
    async def public_keys() -> dict[str, Any]:
        """The Ed25519 public keys that sign receipts."""
        return desk.signer.public_keys_document()

    return api
