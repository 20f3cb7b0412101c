"""The creators' REST API under /v1 (DESIGN §9): thin routes, each one workflow call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot import workflow
from bot.api.ratelimit import RateLimited, limits_of, refuse_unauthenticated
from bot.api.schemas import DeletionIn, DeletionOut, ErrorOut, GrantOut, RequestList, RequestOut, UsageOut
from bot.creator_keys import authenticate
from bot.models import ID_PATTERN, RequestStatus, TermsIn, UsageIn, canonical_json, sha256_hex
from bot.workflow import Creator, Desk, Grant, Idempotency, queries

router = APIRouter(prefix="/v1", tags=["creators"])
_bearer = HTTPBearer(auto_error=False, description="The API key shown once by `likeness creator add`.")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong API key"},
    404: {"model": ErrorOut, "description": "no such resource, or not yours"},
    422: {"model": ErrorOut, "description": "invalid input, named field by field"},
    429: {"model": ErrorOut, "description": "too many calls for this key or address; see Retry-After"},
}
_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not valid JSON"},
    413: {"model": ErrorOut, "description": "the body is larger than 1 MiB"},
    415: {"model": ErrorOut, "description": "the body is not application/json"},
}


def desk_of(request: Request) -> Desk:
    """The desk the application was built with."""
    desk: Desk = request.app.state.desk
    return desk


async def _unauthenticated(request: Request, detail: str) -> HTTPException | RateLimited:
    """Counts the failed call (no database row) and answers 401, or 429 once the address is over."""
    limited = await refuse_unauthenticated(request, "api_key", detail)
    if limited is not None:
        return limited
    return HTTPException(401, detail, {"WWW-Authenticate": "Bearer"})


async def current_creator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Creator:
    """The creator whose bearer API key came with the call; 401 otherwise, 429 over a rate limit."""
    if credentials is None or not credentials.credentials:
        raise await _unauthenticated(request, "send your API key as 'Authorization: Bearer <key>'")
    # Looked up on every call (one indexed read), never cached: a revoked key is refused at once
    # by every instance.
    creator = await authenticate(desk_of(request), credentials.credentials)
    if creator is None:
        raise await _unauthenticated(request, "this API key is not valid")
    limits = limits_of(request)
    if not await limits.api_key.take(workflow.hash_secret(credentials.credentials)):
        raise RateLimited("api_key", limits.api_key.retry_after())
    return creator


CreatorDep = Annotated[Creator, Depends(current_creator)]
# Ids are checked before any query: a NUL or other stray byte never reaches the database.
RequestId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
GrantId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]


async def _desk(request: Request) -> Desk:
    """`desk_of` as a dependency; async, so FastAPI does not hand it to its thread pool."""
    return desk_of(request)


DeskDep = Annotated[Desk, Depends(_desk)]
IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeat a POST safely: the same key and body replay the first answer.",
    ),
]


def _idempotency(key: str | None, scope: str, body: Any) -> Idempotency | None:
    if key is None:
        return None
    return Idempotency(key=key, scope=scope, body_hash=sha256_hex(canonical_json(body)))


async def _request_out(desk: Desk, request_id: str) -> RequestOut:
    view = await queries.request_view(desk, request_id)
    if view is None:
        raise HTTPException(404, f"no request {request_id}")
    status = workflow.grant_status_at(view.grant, desk.clock.now()) if view.grant else None
    return RequestOut.of(view, status)


@router.post(
    "/requests",
    status_code=201,
    response_model=RequestOut,
    responses=_ERRORS | _BODY_ERRORS,
)
async def submit_request(
    terms: TermsIn, creator: CreatorDep, desk: DeskDep, idempotency_key: IdempotencyHeader = None
) -> Any:
    """Submits a likeness-use request to the artist; 201 with the request as filed."""
    # preview_required only when set, so a key first used before the field existed still replays.
    given = terms.model_dump(mode="json", exclude=None if terms.preview_required else {"preview_required"})
    idem = _idempotency(idempotency_key, "POST /v1/requests", given)
    submitted = await workflow.submit_request(
        desk, creator_id=creator.id, terms_in=terms, idempotency=idem, creator=creator
    )
    view = submitted.view
    body = RequestOut.of(view, workflow.grant_status_at(view.grant, desk.clock.now()) if view.grant else None)
    headers = {"Idempotent-Replayed": "true"} if submitted.replayed else {}
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=headers)


@router.get("/requests", response_model=RequestList, responses=_ERRORS)
async def list_requests(
    creator: CreatorDep,
    desk: DeskDep,
    status: Annotated[RequestStatus | None, Query(description="only requests in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RequestList:
    """Lists your own requests, newest first."""
    ids = await queries.creator_request_ids(
        desk, creator.id, status=status.value if status else None, limit=limit
    )
    return RequestList(requests=[await _request_out(desk, rid) for rid in ids])


async def _own_request(desk: Desk, creator: Creator, request_id: str) -> RequestOut:
    body = await _request_out(desk, request_id)
    if body.terms.creator_id != creator.id:
        raise HTTPException(404, f"no request {request_id}")
    return body


@router.get("/requests/{request_id}", response_model=RequestOut, responses=_ERRORS)
async def get_request(request_id: RequestId, creator: CreatorDep, desk: DeskDep) -> RequestOut:
    """One of your requests with its decisions and grant."""
    return await _own_request(desk, creator, request_id)


@router.post(
    "/requests/{request_id}/withdraw",
    response_model=RequestOut,
    responses=_ERRORS
    | _BODY_ERRORS
    | {409: {"model": ErrorOut, "description": "already decided, lapsed or withdrawn"}},
)
async def withdraw_request(
    request_id: RequestId, creator: CreatorDep, desk: DeskDep, idempotency_key: IdempotencyHeader = None
) -> RequestOut:
    """Withdraws a request that is still waiting for a decision."""
    idem = _idempotency(idempotency_key, f"POST /v1/requests/{request_id}/withdraw", {})
    await workflow.withdraw_request(desk, creator_id=creator.id, request_id=request_id, idempotency=idem)
    return await _own_request(desk, creator, request_id)


async def _own_grant(desk: Desk, creator: Creator, grant_id: str) -> Grant:
    grant = await queries.grant_of(desk, grant_id)
    if grant is None or grant.creator_id != creator.id:
        raise HTTPException(404, f"no grant {grant_id}")
    return grant


@router.get("/grants/{grant_id}", response_model=GrantOut, responses=_ERRORS)
async def get_grant(grant_id: GrantId, creator: CreatorDep, desk: DeskDep) -> GrantOut:
    """One of your grants with its status now and the deletion confirmation it owes, if any."""
    grant = await _own_grant(desk, creator, grant_id)
    deletion = await queries.deletion_of(desk, grant_id)
    return GrantOut.of(grant, workflow.grant_status_at(grant, desk.clock.now()), deletion)


@router.get("/grants/{grant_id}/receipt", responses=_ERRORS)
async def get_receipt(grant_id: GrantId, creator: CreatorDep, desk: DeskDep) -> dict[str, Any]:
    """The grant's receipt: JSON signed with Ed25519, verifiable offline with the public keys."""
    grant = await _own_grant(desk, creator, grant_id)
    return grant.receipt


@router.post(
    "/grants/{grant_id}/usage",
    status_code=201,
    response_model=UsageOut,
    responses=_ERRORS
    | {
        409: {
            "model": UsageOut,
            "description": "the use breaks a term (see `violation.reasons`): stored as a violation",
        }
    },
)
async def report_usage(
    grant_id: GrantId,
    usage: UsageIn,
    creator: CreatorDep,
    desk: DeskDep,
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Reports a use of a grant, judged against every approved term: 201 with `violation: null` inside
    all of them; otherwise stored as a violation and answered 409 with its id and reasons."""
    idem = _idempotency(idempotency_key, f"POST /v1/grants/{grant_id}/usage", usage.model_dump(mode="json"))
    recorded = await workflow.record_usage(
        desk, creator_id=creator.id, grant_id=grant_id, usage=usage, idempotency=idem
    )
    body = UsageOut.of(recorded.event).model_dump(mode="json")
    headers = {"Idempotent-Replayed": "true"} if recorded.replayed else {}
    return JSONResponse(body, status_code=409 if recorded.event.violation else 201, headers=headers)


@router.post(
    "/grants/{grant_id}/deletion",
    status_code=201,
    response_model=DeletionOut,
    responses=_ERRORS
    | _BODY_ERRORS
    | {409: {"model": ErrorOut, "description": "no deletion is owed, or it was confirmed already"}},
)
async def confirm_deletion(
    grant_id: str,
    confirmation: DeletionIn,
    creator: CreatorDep,
    desk: DeskDep,
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Confirms that you deleted what you made with the likeness under an ended grant; signed, once."""
    idem = _idempotency(
        idempotency_key, f"POST /v1/grants/{grant_id}/deletion", confirmation.model_dump(mode="json")
    )
    confirmed = await workflow.confirm_deletion(
        desk,
        creator_id=creator.id,
        grant_id=grant_id,
        statement=confirmation.statement,
        deleted_at=confirmation.deleted_at,
        idempotency=idem,
    )
    headers = {"Idempotent-Replayed": "true"} if confirmed.replayed else {}
    body = DeletionOut.of(confirmed.deletion).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers=headers)


@router.get("/grants/{grant_id}/deletion/receipt", responses=_ERRORS)
async def get_deletion_receipt(grant_id: str, creator: CreatorDep, desk: DeskDep) -> dict[str, Any]:
    """The signed receipt of your deletion confirmation, verifiable offline like a grant receipt."""
    await _own_grant(desk, creator, grant_id)
    deletion = await queries.deletion_of(desk, grant_id)
    if deletion is None or deletion.receipt is None:
        raise HTTPException(404, f"grant {grant_id} has no confirmed deletion")
    return deletion.receipt
