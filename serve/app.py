"""The HTTP face of `mem serve`: an OpenAI-compatible API, mem's own endpoints, and MCP.

    POST /v1/chat/completions   the last user message answered as `mem ask` answers it
    GET  /v1/models             `mem`, the base model, each registered adapter
    POST /v1/search             retrieval only: the `mem ask --no-llm --json` object
    POST /v1/ingest             `mem ingest` of paths on the server's machine
    GET  /v1/status             `mem status --json`, plus the folders being watched
    /mcp                        the MCP tools over Streamable HTTP

Answers carry mem's own object (docs/ASK_JSON.md) in an extra top-level field, `mem`, which
OpenAI clients ignore. Blocking work runs in threads; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mem.index.vectors import IndexUnavailable
from mem.memory.answering.prompting import added_citations
from mem.serve.service import Service, ServiceError


def _error(message: str, status: int, code: str = "invalid_request") -> JSONResponse:
    kind = "authentication_error" if status == 401 else "invalid_request_error"
    if status >= 500:
        kind = "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status)


class BearerAuth:
    """Every request (MCP included) must carry `Authorization: Bearer <key>` when a key is set."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.expected is not None:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = _error("missing or wrong API key (Authorization: Bearer …)", 401)
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _body(request: Request) -> dict:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServiceError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ServiceError("the request body must be a JSON object")
    return data


def _k(data: dict) -> int | None:
    k = data.get("k")
    if k is None:
        return None
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
        raise ServiceError("k must be a whole number from 1 to 100")
    return k


def _last_user_message(messages: Any) -> str:
    """The text of the last user message (content as a string or as OpenAI's parts)."""
    if not isinstance(messages, list) or not messages:
        raise ServiceError("messages must be a non-empty list")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "\n".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
            if isinstance(content, str) and content.strip():
                return content
    raise ServiceError("there is no user message to answer")


def _max_tokens(data: dict) -> int | None:
    value = data.get("max_completion_tokens", data.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 32768:
        raise ServiceError("max_tokens must be a whole number from 1 to 32768")
    return value


def build_app(
    service: Service,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    mcp: bool = True,
    on_start: Any = None,
) -> ASGIApp:
    """The ASGI app over `service`; `on_start` (an async callable) runs once serving starts."""
    mcp_server = None
    routes: list = []

    async def chat_completions(request: Request) -> Response:
        from mem.memory.answering.llm import LLMError

        data = await _body(request)
        question = _last_user_message(data.get("messages"))
        model = data.get("model") or None
        k, max_tokens = _k(data), _max_tokens(data)
        service.choose(model)  # an unknown model is a 404 before anything streams
        created = int(time.time())
        ident = f"chatcmpl-{uuid.uuid4().hex}"
        model_id = model or "mem"

        def envelope(**fields: Any) -> dict:
            return {"id": ident, "created": created, "model": model_id, **fields}

        if not data.get("stream"):
            try:
                answer = await anyio.to_thread.run_sync(
                    lambda: service.ask(question, model, k, max_tokens)
                )
            except LLMError as exc:
                return _error(str(exc), 503, "model_unavailable")
            message = {"role": "assistant", "content": answer.answer or ""}
            return JSONResponse(
                envelope(
                    object="chat.completion",
                    choices=[{"index": 0, "message": message, "finish_reason": "stop"}],
                    usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    mem=answer.to_json(),
                )
            )

        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()

        def on_token(piece: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, ("piece", piece))

        def work() -> None:
            try:
                answer = service.ask(question, model, k, max_tokens, on_token)
                loop.call_soon_threadsafe(pieces.put_nowait, ("done", answer))
            except Exception as exc:  # sent to the client as the stream's last event
                loop.call_soon_threadsafe(pieces.put_nowait, ("error", exc))

        def event(payload: dict) -> str:
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return event(envelope(object="chat.completion.chunk", choices=[choice], **extra))

        async def stream():
            worker = asyncio.ensure_future(anyio.to_thread.run_sync(work))
            yield chunk({"role": "assistant", "content": ""})
            while True:
                kind, value = await pieces.get()
                if kind == "piece":
                    yield chunk({"content": value})
                elif kind == "done":
                    # The stream is the model's own text; `mem.answer` is the checked one.
                    # Citations mem added where the model wrote none follow the text.
                    tail = added_citations(value.cited, value.model_cited)
                    if tail:
                        yield chunk({"content": tail})
                    yield chunk({}, "stop", mem=value.to_json())
                    break
                else:
                    message = str(value) or type(value).__name__
                    yield event({"error": {"message": message, "type": "server_error"}})
                    break
            yield "data: [DONE]\n\n"
            await worker

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        choices = await anyio.to_thread.run_sync(service.models)
        created = int(time.time())
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": c.id,
                        "object": "model",
                        "created": created,
                        "owned_by": "mem",
                        "description": c.description,
                    }
                    for c in choices
                ],
            }
        )

    async def search(request: Request) -> Response:
        data = await _body(request)
        query = data.get("query", data.get("question"))
        if not isinstance(query, str):
            raise ServiceError('"query" must be a string')
        k = _k(data)
        return JSONResponse(await anyio.to_thread.run_sync(lambda: service.search(query, k)))

    async def ingest(request: Request) -> Response:
        from mem.memory.lock import LockTimeout

        data = await _body(request)
        paths = data.get("paths", [data["path"]] if "path" in data else [])
        tags = data.get("tags", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ServiceError('"paths" must be a list of strings')
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ServiceError('"tags" must be a list of strings')
        prune = bool(data.get("prune", False))
        try:
            report = await anyio.to_thread.run_sync(
                lambda: service.ingest(paths, prune=prune, tags=tags)
            )
        except ValueError as exc:
            raise ServiceError(str(exc)) from exc
        except LockTimeout as exc:
            return _error(str(exc), 503, "busy")
        return JSONResponse(report.to_json())

    async def status(request: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(service.status))

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return _error(str(exc), exc.status, exc.code)

    async def index_unavailable(request: Request, exc: Exception) -> Response:
        return _error(str(exc), 503, "index_unavailable")  # the Chroma server is down

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/search", search, methods=["POST"]),
        Route("/v1/ingest", ingest, methods=["POST"]),
        Route("/v1/status", status, methods=["GET"]),
    ]
    if mcp:
        from mem.serve.tools import build_mcp

        mcp_server = build_mcp(service)
        # Its own app brings the /mcp route (and, on loopback, DNS-rebinding protection).
        routes.append(Mount("/", app=mcp_server.streamable_http_app(host=host)))

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with _mcp_sessions(mcp_server):
            if on_start is not None:
                await on_start()
            yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ServiceError: service_error, IndexUnavailable: index_unavailable},
    )
    return BearerAuth(app, api_key)


@asynccontextmanager
async def _mcp_sessions(mcp_server):
    """The MCP session manager runs while the app does (a mounted app's lifespan does not)."""
    if mcp_server is None:
        yield
        return
    async with mcp_server.session_manager.run():
        yield
