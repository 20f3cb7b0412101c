"""The JSON control API under ``/control/`` that tests, the browser sandbox and subprocess users drive
a simulator with: route tables, request bodies, fault requests, and errors answered as JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from types import FunctionType
from typing import Any, TypeVar

from aiohttp import web

JSONDict = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]
Marked = TypeVar("Marked", bound=Callable[..., Awaitable[web.StreamResponse]])

CONTROL_PREFIX = "/control/"
_ROUTE_MARK = "control_route"


class NotAnObject(ValueError):
    """A control request whose body is JSON but not an object."""


def control(method: str, path: str) -> Callable[[Marked], Marked]:
    """Marks a simulator's method as the handler of ``method`` on ``path`` (under ``/control/``);
    `marked_routes` collects them."""

    def mark(handler: Marked) -> Marked:
        vars(handler)[_ROUTE_MARK] = (method, path)
        return handler

    return mark


def marked_routes(simulator: object) -> list[Route]:
    """The (method, path, handler) routes of every method of ``simulator`` marked with `control`."""
    routes: list[Route] = []
    for owner in reversed(type(simulator).__mro__):
        for name, member in vars(owner).items():
            if isinstance(member, FunctionType) and _ROUTE_MARK in vars(member):
                method, path = vars(member)[_ROUTE_MARK]
                routes.append((method, path, getattr(simulator, name)))
    return routes


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Adds (method, path, handler) routes to ``app``."""
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)


async def json_object(request: web.Request) -> JSONDict:
    """The request's JSON object body, ``{}`` when it has none.

    Raises ValueError (json.JSONDecodeError) for a body that is not JSON, NotAnObject for one that
    is JSON but not an object.
    """
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise NotAnObject("a JSON object is expected")
    return body


def fault_request(body: JSONDict) -> JSONDict:
    """The arguments of ``inject()`` read from a ``POST /control/faults`` body."""
    return {
        "kind": str(body["kind"]),
        "count": int(body.get("count", 1)),
        "methods": body.get("methods"),
        "delay": float(body.get("delay", 0.0)),
        "retry_after": int(body.get("retry_after", 1)),
    }


def query_int(request: web.Request, name: str) -> int | None:
    """An integer from the query string, None when absent or empty."""
    value = request.query.get(name)
    return int(value) if value else None


@web.middleware
async def errors_as_json_with_cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For control routes: a refused request (KeyError, ValueError, LookupError, TypeError) is
    answered 400 ``{"ok": false, "error": ...}``, and any origin may call (the browser sandbox may
    be served from another one). Other routes pass through untouched."""
    if not request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    response: web.StreamResponse
    if request.method == "OPTIONS":
        response = web.Response(status=204)
    else:
        try:
            response = await handler(request)
        except (KeyError, ValueError, LookupError, TypeError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            response = web.json_response({"ok": False, "error": str(message)}, status=400)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    return response
