"""The MCP tools over a memory: the same four on `mem mcp` (stdio) and `mem serve` (/mcp).

Results are JSON objects (MCP structured content, also sent as text), and every source
in them carries its `locator`: the page, heading, time span or conversation turn a person
follows to the passage.
"""

from __future__ import annotations

from typing import Any

from mem import __version__
from mem.serve.service import Service, ServiceError

INSTRUCTIONS = (
    "mem is the user's personal memory: their notes, documents, lectures and chats. "
    "search_memory finds passages, ask_memory answers with citations [n] of the sources it "
    "returns, remember stores a note or an exchange, get_source reads a chunk or a whole "
    "source. Cite what you use by its source and locator."
)


def build_mcp(service: Service):
    """An MCPServer (mcp 2.x) whose tools call `service`."""
    from mcp.server import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("mem", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    def checked(call, *args: Any) -> Any:
        try:
            return call(*args)
        except ServiceError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool()
    def search_memory(query: str, k: int = 5) -> dict[str, Any]:
        """Find the passages in memory that best match the query (retrieval only, no model).

        Returns the sources best first: rank, chunk_id, source (file path or conversation
        id), title, locator (page, heading, time span or turn), score and text.
        """
        return checked(service.search, query, max(1, min(k, 100)))

    @server.tool()
    def ask_memory(question: str, k: int = 5, model: str = "") -> dict[str, Any]:
        """Answer a question from memory, citing sources as [1], [2]… (the numbered sources
        come back with it). `model`: an id from mem's /v1/models; empty is the default.
        The exchange is remembered, as `mem ask` remembers it."""
        from mem.memory.answering.llm import LLMError

        try:
            answer = checked(service.ask, question, model or None, max(1, min(k, 100)))
        except LLMError as exc:
            raise ToolError(str(exc)) from exc
        return {**answer.to_json(), "cited": list(answer.cited)}

    @server.tool()
    def remember(text: str, title: str = "", reply: str = "") -> dict[str, Any]:
        """Store something in memory, searchable at once. Text alone is a note (give it a
        title); text with a reply is a conversation turn (the user's words and the
        answer), added to today's conversation."""
        return checked(service.remember, text, title, reply)

    @server.tool()
    def get_source(id: str) -> dict[str, Any]:
        """Read one chunk (by the chunk_id a search returned) with its locator, or a whole
        source (by its source: a file path, a conversation or note id) chunk by chunk."""
        return checked(service.get_source, id)

    return server
