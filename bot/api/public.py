"""Routes anyone may call without a key: a grant's public status, and the audit checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from bot import proof, workflow
from bot.api.schemas import ErrorOut
from bot.public_page import CONTENT_SECURITY_POLICY, choose_language, grant_page, missing_page
from bot.workflow import Desk, NotFound

router = APIRouter(tags=["public"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such grant"}}
# A status may change at any moment (a revocation is immediate): caches must ask again.
_FRESH = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
MAX_SEQ = 2**63 - 1


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


@router.get("/public/grants/{grant_id}", responses=_NOT_FOUND)
async def public_grant(grant_id: str, request: Request) -> JSONResponse:
    """A grant's status now, with a statement of it signed by the receipt keys (valid 24 h)."""
    try:
        body = await proof.grant_statement(_desk(request), grant_id)
    except NotFound as why:
        # The same answer as GET /v1/grants/{id} and any unknown path: {"detail": ...}.
        raise HTTPException(404, why.message) from None
    return JSONResponse(body, headers=_FRESH)


@router.get("/g/{grant_id}", response_class=HTMLResponse, responses=_NOT_FOUND)
async def public_grant_page(
    grant_id: str,
    request: Request,
    lang: Annotated[str | None, Query(max_length=35, description="zh-Hans or en")] = None,
    accept_language: Annotated[str | None, Header(alias="Accept-Language")] = None,
) -> HTMLResponse:
    """The same status as a small page for a person: is this use allowed today?"""
    language = choose_language(lang, accept_language[:500] if accept_language else None)
    headers = _FRESH | {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Vary": "Accept-Language"}
    try:
        status = await proof.grant_statement(_desk(request), grant_id)
    except NotFound:
        return HTMLResponse(missing_page(language), status_code=404, headers=headers)
    released = await workflow.released_of_grant(_desk(request), status["id"])
    page = grant_page(status, language, f"/public/grants/{status['id']}", released=released)
    return HTMLResponse(page, headers=headers)


@router.get("/public/outputs/{sha256}", responses={422: {"model": ErrorOut, "description": "not a SHA-256"}})
async def public_output(
    request: Request, sha256: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$", description="hex SHA-256")]
) -> JSONResponse:
    """Whether the file with this SHA-256 was released by the artist, under which grant and until
    when, with each release's signed receipt; `released: false` for any file never released."""
    body = await workflow.public_releases(_desk(request), sha256.lower())
    return JSONResponse(body, headers=_FRESH)


@router.get("/.well-known/likeness-audit.json", responses=_NOT_FOUND)
async def latest_audit_checkpoint(request: Request) -> JSONResponse:
    """The newest signed checkpoint of the audit chain."""
    document = await proof.latest_checkpoint_document(_desk(request))
    if document is None:
        raise HTTPException(404, "no audit checkpoint has been made yet")
    return JSONResponse(document, headers=_FRESH)


@router.get("/public/audit/checkpoints")
async def audit_checkpoints(
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="only checkpoints after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> JSONResponse:
    """Every signed checkpoint, oldest first, a page at a time (`next_after` fetches the next)."""
    page = await proof.checkpoint_page(_desk(request), after=after, limit=limit)
    return JSONResponse(page, headers=_FRESH)
