"""Load a pattern library folder into `Pattern` records plus a report of every problem.

Both schema generations are read: the newest (`ontology`, `context_labels`, `lifecycle`,
`relationships`) and the older one (`classification`, top-level relationship lists of `pat_...` ids).
One bad file never stops the others: it becomes an error-level `Problem` and the scan goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import frontmatter
import yaml

from rag.config import MAX_FILE_BYTES
from rag.load.fields import FieldReader
from rag.load.links import TargetResolver, dangling_reason, resolve_edge
from rag.load.sections import split_sections
from rag.records.pattern import CANONICAL_SECTIONS, KNOWN_CONTEXTS, Pattern, Problem, Relationship

log = logging.getLogger(__name__)

MB = 1024 * 1024
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")
_YAML_HANDLER = frontmatter.YAMLHandler()
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~8x faster, same results


@dataclass(frozen=True, slots=True)
class LoadReport:
    """Counts and problems of one library scan."""

    root: str
    files: int
    patterns: tuple[Pattern, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def counts(self) -> dict[str, int]:
        by_schema: dict[str, int] = {}
        for pattern in self.patterns:
            by_schema[pattern.schema] = by_schema.get(pattern.schema, 0) + 1
        return {
            "files": self.files,
            "patterns": len(self.patterns),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            **{f"schema_{k}": v for k, v in sorted(by_schema.items())},
        }

    def to_dict(self) -> dict:
        return {"root": self.root, "counts": self.counts(), "problems": [p.to_dict() for p in self.problems]}


class FileError(Exception):
    """A file that cannot be used at all; carries the location for the report."""

    def __init__(self, location: str, reason: str):
        super().__init__(reason)
        self.location = location
        self.reason = reason


def iter_markdown_files(root: Path, unreadable: list[OSError] | None = None) -> Iterator[Path]:
    """Every `*.md` under root, sorted, without following directory symlinks (no loops). A folder that cannot be read is
    appended to `unreadable` (when given) instead of being skipped silently."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=None if unreadable is None else unreadable.append):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".md") and not name.startswith("."):
                yield Path(dirpath) / name


def load_library(root: str | Path, max_file_bytes: int = MAX_FILE_BYTES) -> LoadReport:
    """Read every pattern under `root`. Raises FileNotFoundError only when root itself is missing."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"pattern library folder not found: {root}")
    problems: list[Problem] = []
    loaded: list[tuple[Pattern, list[Problem]]] = []
    files = 0
    unreadable: list[OSError] = []
    for path in iter_markdown_files(root, unreadable):
        files += 1
        rel = path.relative_to(root).as_posix()
        try:
            pattern, file_problems = load_file(path, rel, max_file_bytes)
        except FileError as exc:
            problems.append(Problem(rel, exc.location, exc.reason, "error"))
            continue
        loaded.append((pattern, file_problems))
    for exc in unreadable:
        folder = Path(exc.filename or root)
        rel = folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)
        problems.append(
            Problem(rel or ".", "folder", f"cannot read this folder ({exc.strerror or exc}); its files are not loaded", "error")
        )
    patterns, graph_problems = _link(loaded)
    problems.extend(graph_problems)
    problems.sort(key=lambda p: (p.path, p.severity != "error"))
    return LoadReport(str(root), files, tuple(patterns), tuple(problems))


def load_file(path: Path, rel: str, max_file_bytes: int = MAX_FILE_BYTES) -> tuple[Pattern, list[Problem]]:
    """Parse one file. Raises FileError when it is unusable; returns warnings otherwise."""
    raw = _read_bytes(path, max_file_bytes)
    text = _decode(raw)
    if not text.strip():
        raise FileError("file", "empty file")
    if not text.lstrip("\ufeff").startswith("---"):
        raise FileError("line 1", "no front matter: the file must start with a '---' line")
    text = text.lstrip("\ufeff")
    opening = _YAML_HANDLER.FM_BOUNDARY.match(text)
    if opening is None:
        raise FileError("line 1", "no front matter: the file must start with a '---' line")
    try:
        fm_text, body = _YAML_HANDLER.split(text)
    except ValueError:
        raise FileError("line 1", "front matter is not closed by a second '---' line") from None
    # fm_text starts right after the opening boundary, which may have swallowed blank lines after '---'
    fm_first_line = text[: opening.end()].count("\n") + 1
    try:
        data = yaml.load(fm_text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = fm_first_line + mark.line if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        column = f" at column {mark.column + 1}" if mark is not None else ""
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        where = f" ({context} started at line {fm_first_line + context_mark.line})" if context and context_mark is not None else ""
        raise FileError(f"line {line}", f"YAML error{column}: {problem}{where}") from None
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for values that parse but cannot be built: 2020-13-45, !!int abc, a 5000-digit int
        reason = str(exc).split(";")[0] or type(exc).__name__
        raise FileError("front matter", f"YAML value cannot be read ({reason}); quote it to keep it as text") from None
    if not isinstance(data, dict):
        raise FileError("line 1", f"front matter must be a mapping, got {type(data).__name__}")
    body_line = text[: len(text) - len(body)].count("\n") + 1
    reader = FieldReader(data)
    pattern = _build(reader, rel, body, body_line, hashlib.sha256(raw).hexdigest())
    return pattern, [Problem(rel, loc, reason, "warning") for loc, reason in reader.warnings]


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileError("file", "file disappeared or is a broken symlink") from None
    except OSError as exc:
        raise FileError("file", f"cannot stat file: {exc.strerror or exc}") from None
    if not path.is_file():
        raise FileError("file", "not a regular file")
    if size > limit:
        raise FileError(
            "file", f"file too large: {size} bytes, above the limit of {limit} bytes ({limit / MB:.3g} MB); raise it with --max-file-mb"
        )
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileError("file", "file disappeared during the scan") from None
    except OSError as exc:
        raise FileError("file", f"cannot read file: {exc.strerror or exc}") from None


def _decode(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise FileError("file", "binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileError(f"line {line}", f"not UTF-8: invalid byte at offset {exc.start}") from None


def _build(r: FieldReader, rel: str, body: str, body_line: int, digest: str) -> Pattern:
    slug = _required(r, "slug")
    title = _required(r, "title")
    if not SLUG_RE.fullmatch(slug):
        raise FileError("field slug", f"invalid slug {slug!r}: use lowercase letters, digits, '-', '.', '_'")
    stem = Path(rel).stem
    if stem != slug:
        r.warn("field slug", f"slug {slug!r} differs from the file name {stem!r}")
    schema = "ontology" if any(k in r.data for k in ("ontology", "context_labels", "lifecycle", "relationships")) else "classification"
    epigraph, sections = split_sections(body, body_line)
    _check_sections(r, schema, sections)
    return Pattern(
        slug=slug,
        title=title,
        path=rel,
        schema=schema,
        id=r.text("id") or None,
        aliases=r.strings("aliases"),
        summary=r.text("summary") or r.text("description"),
        epigraph=epigraph,
        context_labels=r.context_labels(KNOWN_CONTEXTS),
        domain=r.text("ontology.domain") or None,
        cross_domains=r.strings("ontology.cross_domains"),
        legacy_domain=r.text("classification.domain") or None,
        commons_domains=tuple(dict.fromkeys(r.strings("classification.commons_domain") + r.strings("commons_domain"))),
        tension=r.text("ontology.search_hints.primary_tension"),
        keywords=r.strings("ontology.search_hints.vector_keywords"),
        scores=r.scores("ontology.commons_assessment"),
        overall_score=r.number("ontology.commons_assessment.overall_score"),
        lifecycle=r.lifecycle(),
        relationships=r.relationships(),
        entities=r.entities(),
        communities=r.communities(),
        provenance=r.provenance(),
        sections=sections,
        content_hash=digest,
    )


def _required(r: FieldReader, name: str) -> str:
    """A required text field; a missing one and one of the wrong type (a list, a mapping) are told apart."""
    raw = r.get(name)
    if isinstance(raw, bool) or (raw is not None and not isinstance(raw, (str, int, float, dt.date))):
        raise FileError(f"field {name}", f"{name} must be text, got {type(raw).__name__}")
    value = r.text(name)
    if not value:
        raise FileError(f"field {name}", f"missing {name}")
    return value


def _check_sections(r: FieldReader, schema: str, sections) -> None:
    if not sections:
        r.warn("body", "no sections: the body has no level 2-4 headings")
        return
    if schema == "ontology":
        roles = {s.role for s in sections}
        for name in CANONICAL_SECTIONS:
            if name.lower().replace(" ", "-") not in roles:
                r.warn("body", f"missing canonical section {name!r}")
    for section, following in zip(sections, (*sections[1:], None)):
        has_children = following is not None and following.level > section.level
        if not section.text.strip() and not has_children:
            r.warn(f"line {section.line}", f"empty section {section.title!r}")


def _link(loaded: list[tuple[Pattern, list[Problem]]]) -> tuple[list[Pattern], list[Problem]]:
    """Drop duplicate slugs, resolve relationship targets to slugs (by id, title or alias; rag/load/links.py),
    report the dangling ones."""
    problems: list[Problem] = []
    by_slug: dict[str, list[tuple[Pattern, list[Problem]]]] = {}
    for item in loaded:
        by_slug.setdefault(item[0].slug, []).append(item)
    kept: list[tuple[Pattern, list[Problem]]] = []
    for slug, items in by_slug.items():
        if len(items) == 1:
            kept.append(items[0])
            continue
        named = [item for item in items if Path(item[0].path).stem == slug]  # the file named after its slug wins
        winner = named[0] if len(named) == 1 else None
        paths = ", ".join(p.path for p, _ in items)
        for pattern, _ in items:
            if winner is not None and pattern is winner[0]:
                continue
            outcome = f"indexed {winner[0].path}, whose name is the slug" if winner else "indexed none: no one file is named after the slug"
            problems.append(
                Problem(pattern.path, "field slug", f"duplicate slug {slug!r} in {paths}; {outcome}; rename or fix this file", "error")
            )
        if winner is not None:
            kept.append(winner)
    kept.sort(key=lambda item: item[0].path)
    resolver = TargetResolver.of(p for p, _ in kept)
    patterns: list[Pattern] = []
    for pattern, file_problems in kept:
        problems.extend(file_problems)
        edges: list[Relationship] = []
        for edge in pattern.relationships:
            resolution = resolver.resolve(edge.target, pattern.slug)
            if (resolution.slug or edge.target) == pattern.slug:
                continue
            if resolution.slug is None:
                problems.append(Problem(pattern.path, f"field relationships.{edge.kind}", dangling_reason(edge, resolution), "warning"))
            edges.append(resolve_edge(edge, resolution))
        patterns.append(replace(pattern, relationships=tuple(edges)) if edges != list(pattern.relationships) else pattern)
    return patterns, problems
