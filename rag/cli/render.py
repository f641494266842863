"""Plain-text layouts for people at a terminal, sized to its width (80 columns is the design width).

Prose (queries, snippets, summaries) wraps at word boundaries; slugs and titles are never wrapped or cut:
a line that cannot hold one is given to it whole. Every function returns lines; the commands print them.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterable, Sequence

MIN_WIDTH, MAX_WIDTH = 40, 120  # wider terminals still get lines a reader can follow
# Lines per hit under its title (slug and section, context label, snippet) and the most each may take:
# five hits then fit one 30-line screen at 80 columns, with or without --context (--explain adds one).
HIT_LINES = 4
SNIPPET_LINES = 2
LABEL_LINES = 2
INDENT = "    "


def width() -> int:
    """The terminal's width ($COLUMNS first), kept between MIN_WIDTH and MAX_WIDTH."""
    return max(MIN_WIDTH, min(MAX_WIDTH, shutil.get_terminal_size((80, 24)).columns))


def prose(text: str, cols: int, indent: str = "", max_lines: int | None = None) -> list[str]:
    """`text` wrapped at spaces only (hyphenated words and long tokens stay whole), at most `max_lines`."""
    return textwrap.wrap(
        " ".join(text.split()),
        width=cols,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
        max_lines=max_lines,
        placeholder=" …",
    )


def joined(parts: Sequence[str], cols: int, indent: str = "", sep: str = " · ") -> list[str]:
    """Items on lines of at most `cols`, separated by `sep`; an item is never split."""
    lines: list[str] = []
    line = ""
    for part in parts:
        candidate = f"{line}{sep}{part}" if line else f"{indent}{part}"
        if line and len(candidate) > cols:
            lines.append(line)
            line = f"{indent}{part}"
        else:
            line = candidate
    return lines + ([line] if line else [])


def _headline(left: str, right: str, cols: int) -> str:
    gap = cols - len(left) - len(right)
    return f"{left}{' ' * gap}{right}" if gap >= 2 else f"{left}  {right}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def filters_text(filters: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None)


def search_lines(results, cols: int, offset: int = 0, explain: bool = False) -> list[str]:
    """A ranked list: title and score, then slug, best section and context label, then the evidence snippet."""
    n = len(results.hits)
    shown = f"hits {offset + 1}-{offset + n}" if offset and n else f"{n} hit{'s' if n != 1 else ''}"
    lines = prose(f"{shown} for {results.query!r}", cols)
    meta = [f"index {results.index_version}"]
    if filters_text(results.filters):
        meta.append(f"filters: {filters_text(results.filters)}")
    if explain and results.fusion:
        f = results.fusion
        weights = ", ".join(f"{k} {v:g}" for k, v in f.get("weights", {}).items())
        meta.append(f"fusion: {f.get('method')}" + (f" ({weights})" if weights else ""))
    lines += joined(meta, cols)
    if results.no_good_match and results.hits:
        lines += prose(
            f"No good match in this library: every hit's relevance is below {results.relevance_threshold:.2f}; these are the closest.", cols
        )
    for h in results.hits:
        lines.append("")
        lines.append(_headline(f"{h.rank:>2}  {h.title}", ("pinned " if h.pinned else "") + f"{h.relevance:.2f}", cols))
        details = [h.slug]
        if h.evidence:
            details.append(h.evidence[0].section)
        if h.name_match:
            details.append(f"name match: {h.name_match}")
        block = joined(details, cols, INDENT)
        if h.context:  # a context's label is often a sentence: prose, at most LABEL_LINES
            block += prose(f"{h.context}: {h.context_label or '(no label)'}", cols, INDENT, LABEL_LINES)
        lines += block
        if h.duplicates:
            lines += joined([f"also: {h.duplicates[0]}", *h.duplicates[1:]], cols, INDENT, ", ")
        if explain:
            scores = [f"fused {h.score:.3f}"] + [
                f"{name} #{s.rank} {s.score:.3g}" for name, s in sorted(h.retrievers.items(), key=lambda kv: kv[1].rank)
            ]
            lines += joined(scores or ["no retriever scores"], cols, INDENT)
        if h.evidence and h.evidence[0].snippet:  # the snippet gets what the hit's lines budget leaves (at least one)
            lines += prose(h.evidence[0].snippet, cols, INDENT, max(1, min(SNIPPET_LINES, HIT_LINES - len(block))))
    return lines


def facets_lines(facets: dict, cols: int, version: str) -> list[str]:
    lines = [f"facets of index {version} (patterns per value)"]
    for name in ("domains", "contexts", "statuses"):
        values = facets[name]
        lines.append("")
        lines.append(f"{name} ({len(values)})")
        lines += joined([f"{v['value']} {v['count']}" for v in values] or ["(none)"], cols, "  ")
    return lines


def list_lines(page, cols: int, version: str) -> list[str]:
    n = len(page.patterns)
    shown = (
        f"patterns {page.offset + 1}-{page.offset + n} of {page.total}" if n else f"no patterns at offset {page.offset} (of {page.total})"
    )
    meta = [shown, f"index {version}"]
    if filters_text(page.filters):
        meta.append(f"filters: {filters_text(page.filters)}")
    lines = joined(meta, cols)
    for p in page.patterns:
        lines.append(p.title)
        lines += joined([p.slug, *(p.domains[:2]), *([p.status] if p.status else [])], cols, INDENT)
        if p.context_label:
            lines += prose(f"{page.filters.get('context')}: {p.context_label}", cols, INDENT, LABEL_LINES)
    if page.next_offset is not None:
        lines += ["", f"more: --offset {page.next_offset}"]
    return lines


ARROWS = {"outgoing": "\u2192", "incoming": "\u2190", "both": "\u2194"}  # as the web page draws them


def related_lines(slug: str, edges: Iterable, dangling: Sequence[str], cols: int) -> list[str]:
    """One line per related pattern with all its relations (the same target may be enables and complementary):
    `slug: → enables 0.75, ← complementary 0.75 · Title`, the title when it fits."""
    targets: dict[str, tuple[str, list[str]]] = {}
    edges = list(edges)
    for r in edges:
        weight = "" if r.weight is None else f" {r.weight:g}"
        named = f" (named by {r.resolved_by})" if r.resolved_by else ""
        targets.setdefault(r.slug, (r.title, []))[1].append(f"{ARROWS.get(r.direction, '')} {r.relation}{weight}{named}")
    n = len(targets)
    legend = f"{ARROWS['outgoing']} declared here, {ARROWS['incoming']} by the other, {ARROWS['both']} by both"
    lines = prose(f"related to {slug}: {_count(n, 'pattern')} ({legend})", cols)
    for target, (title, relations) in targets.items():
        line = f"  {target}: {', '.join(relations)}"
        if len(line) > cols:  # many relations: they wrap under the slug, never splitting one
            lines += joined([f"{target}:", *[f"{r}," for r in relations[:-1]], relations[-1]], cols, "  ", " ")
            continue
        lines.append(line + (f" · {title}" if len(line) + 3 + len(title) <= cols else ""))
    if dangling:
        lines.append("")
        lines += prose(f"{len(dangling)} curated target{'s' if len(dangling) != 1 else ''} name no pattern of this library:", cols)
        lines += joined(list(dangling), cols, "  ", ", ")
    return lines


def similar_lines(slug: str, nearest: Sequence, cols: int) -> list[str]:
    """Like a search: rank, title and score on one line, then the slug and the closest section (never split)."""
    lines = [f"{_count(len(nearest), 'pattern')} similar to {slug}"]
    for rank, s in enumerate(nearest, start=1):
        lines.append(_headline(f"{rank:>2}  {s.title}", f"{s.score:.3f}", cols))
        lines += joined([s.slug, f"closest: {s.chunk_id.split('#', 1)[-1]}"], cols, INDENT)
    return lines


def markdown_lines(text: str, cols: int) -> list[str]:
    """Markdown with its plain paragraph lines wrapped; headings, lists, quotes, tables and code as written."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.strip() or line.lstrip()[:1] in ("#", "-", "*", "|", ">", "`") or line.lstrip()[:2].rstrip(".").isdigit():
            lines.append(line)
        else:
            lines += prose(line, cols)
    return lines


def rendered_markdown(text: str, cols: int, terminal: bool) -> str:
    """Markdown rendered by rich at `cols` columns: paragraphs wrapped, emphasis as styles (plain text when `terminal`
    is false), headings left-aligned and underlined so that they stand out without styles too."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=cols, force_terminal=terminal, highlight=False, soft_wrap=False)
    console.print(_markdown(text))
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def _markdown(text: str):
    from rich.markdown import Heading, Markdown
    from rich.text import Text

    class LeftHeading(Heading):
        def __rich_console__(self, console, options):
            heading = self.text.copy()
            heading.justify = "left"
            yield heading
            yield Text(("\u2550" if self.tag == "h1" else "\u2500") * min(heading.cell_len, options.max_width), style="markdown.hr")

    class PageMarkdown(Markdown):
        elements = {**Markdown.elements, "heading_open": LeftHeading}

    return PageMarkdown(text)


EXAMPLES_PER_KIND = 3  # `rag validate` shows this many problems of each kind (bmn: 178 warnings of 3 kinds in 20 lines)
EXAMPLE_INDENT = " " * 7  # under the count column
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def problem_kind(reason: str) -> tuple[str, str]:
    """A problem's kind and what is particular to it: "dangling relationship: 'x' is not in the library" is of kind
    "dangling relationship" ("YAML error at column 3" of "YAML error at column N"); a reason without a colon is its own
    kind, its quoted names replaced by '…'."""
    head, sep, rest = reason.partition(": ")
    if sep and not _QUOTED.search(head):
        return re.sub(r"\d+", "N", head), rest
    return _QUOTED.sub("'…'", reason.split("; ", 1)[0]), reason


def problems_lines(report, cols: int, everything: bool = False) -> list[str]:
    """A library's counts, then its problems by severity and kind, most frequent kind first: every problem with
    `everything`, else the first EXAMPLES_PER_KIND of each kind. File names and locations are never cut."""
    counts = report.counts()
    schemas = ", ".join(f"{k.removeprefix('schema_')} {v}" for k, v in counts.items() if k.startswith("schema_"))
    where = f"library {report.root}: {counts['files']} files, {counts['patterns']} patterns" + (f" ({schemas})" if schemas else "")
    lines = prose(f"{where}; {_count(counts['errors'], 'error')}, {_count(counts['warnings'], 'warning')}", cols)
    hidden = 0
    for severity, problems in (("error", report.errors), ("warning", report.warnings)):
        kinds: dict[str, list[tuple[object, str]]] = {}
        for p in problems:
            kind, particular = problem_kind(p.reason)
            kinds.setdefault(kind, []).append((p, particular))
        if not kinds:
            continue
        lines += [
            "",
            f"{len(problems)} {severity}{'s' if len(problems) != 1 else ''} of {len(kinds)} kind{'s' if len(kinds) != 1 else ''}:",
        ]
        for kind, found in sorted(kinds.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            lines += textwrap.wrap(
                kind, cols, initial_indent=f"{len(found):>5}  ", subsequent_indent=EXAMPLE_INDENT, break_long_words=False
            )
            shown = found if everything else found[:EXAMPLES_PER_KIND]
            for p, particular in shown:
                lines += prose(f"{p.path} ({p.location}): {particular}", cols, EXAMPLE_INDENT)
            if len(found) > len(shown):
                lines.append(f"{EXAMPLE_INDENT}and {len(found) - len(shown)} more")
                hidden += len(found) - len(shown)
    if hidden:
        lines += [
            "",
            *prose(f"{hidden} problems not shown: `rag validate {report.root} --all` lists every one (--json for programs).", cols),
        ]
    return lines
