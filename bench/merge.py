"""`python -m bench.merge BASE.json RERUN.json --sections http,memory,startup --why TEXT`: replace sections of
one benchmark run by those of a second invocation (`python -m bench --skip ...`), say so in the report, and
rewrite BASE's .json and .md (goals recomputed). For a section that failed or was measured wrong in the full
run, when the whole run cannot be repeated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bench import report

app = typer.Typer(add_completion=False, help=__doc__)


def merge(base: dict, rerun: dict, sections: list[str], why: str, command: str) -> dict:
    missing = [name for name in sections if name not in rerun]
    if missing:
        raise ValueError(f"the second run has no section {', '.join(missing)}")
    out = {**base, **{name: rerun[name] for name in sections}}
    out["reruns"] = [*base.get("reruns", []), {"sections": sections, "date": rerun.get("date"), "command": command, "why": why}]
    out["goals"] = [g.to_dict() for g in report.goals(out)]
    return out


@app.command()
def main(
    base: Annotated[Path, typer.Argument(help="The full run's .json (rewritten with its .md).")],
    rerun: Annotated[Path, typer.Argument(help="The second invocation's .json.")],
    sections: Annotated[str, typer.Option("--sections", help="Comma-separated sections to take from the second run.")],
    why: Annotated[str, typer.Option("--why", help="Why the sections were measured again (printed in the report).")],
    command: Annotated[str, typer.Option("--command", help="The second invocation's command line.")],
) -> None:
    merged = merge(
        json.loads(base.read_text()), json.loads(rerun.read_text()), [s.strip() for s in sections.split(",") if s.strip()], why, command
    )
    json_path, md_path = report.write(merged, base.parent)
    typer.echo(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    app()
