"""The sandbox page's routes: the page itself, who-is-who, change notifications, and two proxies.

The proxies put the simulators' control APIs on the service's own origin (`/sandbox/telegram/...`
→ Telegram simulator `/control/...`, `/sandbox/slack/...` → Slack simulator `/control/...`), so
the page needs no CORS and the simulators stay on loopback. Mounted only when the sandbox is on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import httpx
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from sandbox.guard import leaves_prefix

if TYPE_CHECKING:
    from sandbox.wiring import Sandbox

PAGE_DIR = Path(__file__).resolve().parent / "page"
# The page asks again at once, so a short wait costs nothing and keeps a Ctrl+C from waiting long
# for an open long poll (uvicorn lets running requests finish before it stops).
MAX_WAIT_SECONDS = 5.0
_FORWARDED_HEADERS = ("content-type", "content-disposition")
_NO_STORE = {"Cache-Control": "no-store"}


def page_router(sandbox: Sandbox) -> APIRouter:
    """GET /sandbox, /sandbox/config, /sandbox/changes and the two control-API proxies."""
    router = APIRouter(include_in_schema=False)
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    @router.get("/sandbox")
    async def page() -> FileResponse:
        """The sandbox page."""
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html", headers=_NO_STORE)

    @router.get("/sandbox/config")
    async def config() -> JSONResponse:
        """The demo's ids and the creator's API key (sandbox only)."""
        if sandbox.seeded is None:
            return JSONResponse({"detail": "the sandbox is still starting"}, status_code=503)
        return JSONResponse(sandbox.page_config(), headers=_NO_STORE)

    @router.get("/sandbox/changes")
    async def changes(
        telegram: int = -1,
        slack: int = -1,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = MAX_WAIT_SECONDS,
        *,
        request: Request,
    ) -> JSONResponse:
        """Long poll: answers once either simulator changed since the versions given, or after `wait`."""
        changed = asyncio.ensure_future(sandbox.wait_for_change(telegram, slack, wait))
        gone = asyncio.ensure_future(_until_disconnected(request))
        await asyncio.wait({changed, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in (changed, gone):
            task.cancel()
        await asyncio.gather(changed, gone, return_exceptions=True)
        assert sandbox.service is not None
        body = {
            "telegram": sandbox.telegram.version if sandbox.telegram else 0,
            "slack": sandbox.slack_version() if sandbox.slack else 0,
            "now": sandbox.service.desk.clock.now().isoformat(),
        }
        return JSONResponse(body, headers=_NO_STORE)

    async def forward(base: str, path: str, request: Request) -> Response:
        if leaves_prefix(path):
            return JSONResponse({"detail": "not found"}, status_code=404)
        # Each segment is sent as a name, never as syntax: no '?', '#' or '/' can be smuggled in.
        url = f"{base}/control/" + "/".join(quote(segment, safe="") for segment in path.split("/"))
        body = await request.body()
        headers = {"content-type": request.headers.get("content-type", "application/json")} if body else {}
        try:
            answer = await client.request(
                request.method, url, params=request.query_params, content=body or None, headers=headers
            )
        except httpx.HTTPError as error:
            return JSONResponse({"error": f"the simulator did not answer: {error}"}, status_code=502)
        kept = {k: v for k, v in answer.headers.items() if k.lower() in _FORWARDED_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=kept | _NO_STORE)

    @router.api_route("/sandbox/telegram/{path:path}", methods=["GET", "POST", "DELETE"])
    async def telegram_control(path: str, request: Request) -> Response:
        """The Telegram simulator's control API, on this origin."""
        return await forward(sandbox.telegram_url, path, request)

    @router.api_route("/sandbox/slack/{path:path}", methods=["GET", "POST", "DELETE"])
    async def slack_control(path: str, request: Request) -> Response:
        """The Slack simulator's control API, on this origin."""
        return await forward(sandbox.slack_url, path, request)

    sandbox.on_close.append(client.aclose)
    return router


async def _until_disconnected(request: Request) -> None:
    """Returns when the browser goes away (a closed tab need not hold its long poll open)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def mount_page(api: FastAPI, sandbox: Sandbox) -> None:
    """Adds the page's routes and its static files to the service's app."""
    api.include_router(page_router(sandbox))
    api.mount("/sandbox/static", StaticFiles(directory=PAGE_DIR), name="sandbox-static")
