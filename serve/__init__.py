"""`mem serve`, `mem mcp` and `mem watch`: the memory for other programs, over HTTP
(OpenAI-compatible, plus mem's own endpoints), over MCP (stdio and Streamable HTTP), and
kept up to date with watched folders."""
