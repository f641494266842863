"""The command-line faces; `rag.cli.app:app` is the `rag` command (also `python -m rag`)."""
