"""The faces that serve a loaded index: the operations (`service`), wire models, HTTP and MCP."""
