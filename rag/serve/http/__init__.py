"""The HTTP API: `create_app(settings)` builds a FastAPI app serving one index (and MCP at /mcp)."""

from rag.serve.http.app import create_app

__all__ = ["create_app"]
