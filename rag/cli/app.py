"""The `rag` command: every sub-command registered here, explicitly, with no import side effects."""

from __future__ import annotations

import typer

from rag.cli import adapt, browse, evaluate, fit, library, query, serving

HELP = "Search pattern libraries: validate, index, search, browse, serve, evaluate, fit, adapt."

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)


@app.callback()
def _root() -> None:
    """Search pattern libraries: validate, index, search, browse, serve, evaluate, fit, adapt."""


app.command()(library.validate)
app.command()(library.index)
app.command()(query.search)
app.command()(query.show)
app.command()(query.related)
app.command()(query.similar)
app.command()(browse.facets)
app.command("list")(browse.list_)
app.command()(browse.context)
app.command()(serving.serve)
app.command()(serving.mcp)
app.command("eval")(evaluate.eval_)
app.command()(fit.fit)
app.command()(adapt.adapt)


def main() -> None:  # pragma: no cover - console entry point
    app()
