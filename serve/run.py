"""Starting things: `mem serve` (uvicorn), `mem mcp` (stdio), `mem watch` (foreground)."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
from collections.abc import Sequence

from mem.serve.service import Service

log = logging.getLogger(__name__)


class ServeError(Exception):
    """mem serve cannot start as asked (a public bind without a key, a bad folder)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, treat it as reachable


def api_key(host: str, env_name: str) -> str | None:
    """The key from $env_name; required off loopback. On loopback a key that is set is
    still enforced (someone set it on purpose)."""
    key = os.environ.get(env_name, "").strip() if env_name else ""
    if not key and not is_loopback(host):
        raise ServeError(
            f"refusing to listen on {host} without an API key: set the environment variable "
            f"{env_name or 'MEM_API_KEY'} (see --api-key-env), or bind 127.0.0.1"
        )
    return key or None


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr, force=True
    )


def serve(
    home: str | None,
    host: str,
    port: int,
    api_key_env: str,
    watch: Sequence[str] = (),
    debounce_ms: int = 1000,
) -> None:
    """Serve until Ctrl-C / SIGTERM. Raises ServeError before binding when it cannot."""
    import uvicorn

    from mem.serve.app import build_app
    from mem.serve.watch import check_folders, describe, start_watch

    key = api_key(host, api_key_env)
    try:
        folders = check_folders(watch)
    except ValueError as exc:
        raise ServeError(str(exc)) from exc
    _logging()
    service = Service(home)
    service.warm_up()
    stop: threading.Event | None = None
    if folders:
        service.watching = folders
        _, stop = start_watch(
            folders,
            lambda dirs: service.ingest(dirs, prune=True),
            debounce_ms,
            lambda report: log.info("mem watch: %s", describe(report)),
        )
    base = f"http://{host}:{port}"
    log.info(
        "mem serve: %s on %s (OpenAI base URL %s/v1, MCP %s/mcp)%s",
        service.home,
        base,
        base,
        base,
        "; API key required" if key else "",
    )
    app = build_app(service, key, host)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        if stop is not None:
            stop.set()
        service.close()


def mcp_stdio(home: str | None) -> None:
    """MCP over this process's stdin/stdout (what desktop clients start)."""
    import anyio

    from mem.serve.tools import build_mcp

    service = Service(home, readers=2)
    try:
        anyio.run(build_mcp(service).run_stdio_async)
    finally:
        service.close()


def watch_foreground(home: str | None, folders: Sequence[str], debounce_ms: int) -> None:
    """`mem watch`: ingest now, then on every quiet batch of changes, until Ctrl-C."""
    from mem.memory import Memory
    from mem.serve.watch import check_folders, describe, watch_folders

    try:
        resolved = check_folders(folders)
    except ValueError as exc:
        raise ServeError(str(exc)) from exc
    _logging()
    memory = Memory(home)

    def ingest(dirs: Sequence[str]):
        return memory.ingest(dirs, prune=True, progress=False)

    log.info("mem watch: %s -> %s", ", ".join(resolved), memory.home)
    try:
        watch_folders(
            resolved,
            ingest,
            threading.Event(),
            debounce_ms,
            lambda report: log.info("mem watch: %s", describe(report)),
        )
    finally:
        memory.close()
