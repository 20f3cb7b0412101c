"""The intake benchmark's reference: a FastAPI route that answers a constant, served like the service."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()
ANSWER = {"id": "req_0000000000000000", "status": "pending"}


@app.post("/v1/requests")
async def constant() -> JSONResponse:
    """Answers 201 with a constant body, doing no work at all."""
    return JSONResponse(ANSWER, status_code=201)
