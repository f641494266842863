"""`python -m rag`: the `rag` command."""

from rag.cli.app import main

main()
