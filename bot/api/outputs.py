"""The creators' routes for outputs: submit a file made under a grant, read where it stands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from bot import workflow
from bot.api.routes import _ERRORS, CreatorDep, DeskDep, GrantId
from bot.api.schemas import ErrorOut
from bot.models import ID_PATTERN, MAX_URL_LENGTH
from bot.output_fetch import fetch_chunks
from bot.output_files import LIMITS, MIB, FileRefused, declared_type
from bot.webhook_address import WebhookPolicy

router = APIRouter(prefix="/v1", tags=["outputs"])
OutputId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
_CHUNK = 64 * 1024
_ACCEPTED = ", ".join(f"{kind} ≤ {limit // MIB} MiB" for kind, limit in LIMITS.items())
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the multipart body is malformed or has too many parts"},
    409: {"model": ErrorOut, "description": "`grant_not_active`, or `output_exists` (same file, same grant)"},
    413: {"model": ErrorOut, "description": "`file_too_large` for its type, or `output_quota_exceeded`"},
    415: {
        "model": ErrorOut,
        "description": "`unsupported_media_type`: not accepted, or not what the bytes are",
    },
    422: {
        "model": ErrorOut,
        "description": "`corrupt_file` (empty, cut short, malformed) or a missing field",
    },
}


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


def file_refused_answer(_request: Request, error: Exception) -> JSONResponse:
    """A refused file: its status (413, 415, 422) and reason code."""
    assert isinstance(error, FileRefused)
    return JSONResponse({"detail": error.message, "code": error.code}, status_code=error.status)


class OutputByUrl(BaseModel):
    """An output too large to upload: where the service fetches it, and what it must be."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, description="https URL of the file")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="hex SHA-256 the fetched bytes must have")
    media_type: str = Field(min_length=1, max_length=100)
    description: str = Field(max_length=100_000)


async def _submit_by_url(
    grant_id: str, request: Request, creator_id: str, desk: workflow.Desk
) -> JSONResponse:
    try:
        given = OutputByUrl.model_validate_json(await request.body())
    except ValidationError as error:
        problems = error.errors(include_url=False)
        raise RequestValidationError([p | {"loc": ("body", *p.get("loc", ()))} for p in problems]) from None
    media_type = declared_type(given.media_type)
    policy: WebhookPolicy = getattr(request.app.state, "output_fetch_policy", WebhookPolicy())
    output = await workflow.submit_output(
        desk,
        creator_id=creator_id,
        grant_id=grant_id,
        declared_type=media_type,
        chunks=fetch_chunks(given.url, policy, LIMITS[media_type]),
        description=given.description,
        expected_sha256=given.sha256,
    )
    body = {"id": output.id, "sha256": output.sha256, "status": output.status}
    return JSONResponse(body, status_code=201)


def _missing(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "missing"}])


@router.post(
    "/grants/{grant_id}/outputs",
    status_code=201,
    responses=_ERRORS | _UPLOAD_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "description"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "description": {"type": "string"},
                        },
                    }
                },
                "application/json": {"schema": OutputByUrl.model_json_schema()},
            },
            "required": True,
        }
    },
)
async def submit_output(grant_id: GrantId, request: Request, creator: CreatorDep, desk: DeskDep) -> Any:
    """Submits a file made under one of your active grants for the artist to release:
    multipart `file` (its part's Content-Type is the declared type) and `description`.
    Accepted:"""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _submit_by_url(grant_id, request, creator.id, desk)
    if content_type != "multipart/form-data":
        raise HTTPException(
            415, "send the output as multipart/form-data (`file`, `description`) or JSON with its `url`"
        )
    async with request.form(max_files=1, max_fields=4, max_part_size=64 * 1024) as form:
        upload = form.get("file")
        description = form.get("description")
        if not isinstance(upload, UploadFile):
            raise _missing("file", "attach the output as the `file` part")
        if not isinstance(description, str):
            raise _missing("description", "say what the output is in `description`")
        output = await workflow.submit_output(
            desk,
            creator_id=creator.id,
            grant_id=grant_id,
            declared_type=upload.content_type,
            chunks=_chunks(upload),
            description=description,
        )
    body = {"id": output.id, "sha256": output.sha256, "status": output.status}
    return JSONResponse(body, status_code=201)


submit_output.__doc__ = (submit_output.__doc__ or "") + _ACCEPTED + "."


@router.get("/outputs/{output_id}", responses=_ERRORS)
async def get_output(output_id: OutputId, creator: CreatorDep, desk: DeskDep) -> dict[str, object]:
    """One of your outputs: its hash, type, description and whether the artist released it."""
    return (await workflow.creators_output(desk, output_id, creator.id)).public()


@router.get("/outputs/{output_id}/receipt", responses=_ERRORS)
async def get_output_receipt(output_id: OutputId, creator: CreatorDep, desk: DeskDep) -> dict[str, object]:
    """The signed release receipt of one of your outputs (404 until the artist released it):
    it binds the file's SHA-256, the grant and the terms hash; `likeness receipt verify` checks it."""
    view = await workflow.creators_output(desk, output_id, creator.id)
    if view.output.receipt is None:
        raise HTTPException(404, f"output {output_id} is {view.output.status}, not released")
    return view.output.receipt
