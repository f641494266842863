// The analyst page: search (/?q=...) and pattern view (/p/{slug}?context=...), rendered from the URL.
// Talks to the JSON API only. Every piece of data goes into the page as text nodes (no innerHTML).
"use strict";
(() => {
  const CONTEXTS = ["corporate", "government", "activist", "tech", "academic"];
  const FILTERS = ["domain", "context", "status", "min_confidence"];
  const STOP = new Set("the and our are was were for with that this not but has have had you your they them their its from all any can into out too very much many who what when how why which there here been being does did doing just than then also nobody".split(" "));
  const ARROWS = { outgoing: "\u2192", incoming: "\u2190", both: "\u2194" };
  const DIRECTION = { outgoing: "declared here", incoming: "declared by the other pattern", both: "declared by both" };
  const $ = (id) => document.getElementById(id);
  const cache = new Map(); // GET and search answers by request, for the back button
  let facets = null;
  let lastSearch = "/";
  let lastOpened = null;
  let seq = 0;

  // -- DOM and HTTP helpers ----------------------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat(Infinity)) if (kid != null && kid !== false) node.append(kid instanceof Node ? kid : String(kid));
    return node;
  }

  async function api(path, body) {
    const key = path + (body === undefined ? "" : JSON.stringify(body));
    if (cache.has(key)) return cache.get(key);
    const init = body === undefined
      ? { headers: { accept: "application/json" } }
      : { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(body) };
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON: reported below */ }
    if (!res.ok) {
      const error = new Error((data && data.detail) || `${res.status} ${res.statusText}`);
      error.data = data || {};
      error.status = res.status;
      throw error;
    }
    if (cache.size > 50) cache.delete(cache.keys().next().value);
    cache.set(key, data);
    return data;
  }

  const fill = (node, ...kids) => node.replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
  const enc = encodeURIComponent;
  const fmt = (x, digits = 2) => (typeof x === "number" ? x.toFixed(digits) : "");
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  const patternUrl = (slug, context, key) => `/p/${enc(slug)}${context ? `?context=${enc(context)}` : ""}${key ? `#${key}` : ""}`;

  function errorBox(error) {
    const valid = error.data && error.data.valid;
    const suggestions = error.data && error.data.suggestions;
    return el("div", { class: "error", role: "alert" },
      el("p", {}, error.message),
      valid && valid.length ? el("p", {}, "Valid values: ", valid.join(", ")) : null,
      suggestions && suggestions.length ? el("p", {}, "Did you mean: ", suggestions.map((s, i) => [i ? ", " : "", el("a", { href: patternUrl(s), "data-nav": "" }, s)])) : null);
  }

  // -- text: query-term highlighting and a small, safe Markdown subset ---------------------------
  function queryTerms(query) {
    const words = (query.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => w.length >= 3 && !STOP.has(w));
    const stems = words.map((w) => (w.length > 5 ? w.slice(0, -2) : w));
    return [...new Set(stems)].sort((a, b) => b.length - a.length);
  }

  function highlight(text, terms) {
    if (!terms.length) return document.createTextNode(text);
    const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${escaped.join("|")})[\\p{L}\\p{N}]*`, "giu");
    const out = document.createDocumentFragment();
    let at = 0;
    for (const m of text.matchAll(re)) {
      out.append(text.slice(at, m.index), el("mark", {}, m[0]));
      at = m.index + m[0].length;
    }
    out.append(text.slice(at));
    return out;
  }

  function inline(text) {
    const out = document.createDocumentFragment();
    const re = /\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)/g;
    let at = 0;
    for (const m of text.matchAll(re)) {
      out.append(text.slice(at, m.index));
      if (m[1] || m[2]) out.append(el("strong", {}, m[1] || m[2]));
      else if (m[3]) out.append(el("em", {}, m[3]));
      else if (m[4]) out.append(el("code", {}, m[4]));
      else out.append(/^(https?:|\/|#)/.test(m[6]) ? el("a", { href: m[6], rel: "noopener noreferrer" }, m[5]) : m[5]);
      at = m.index + m[0].length;
    }
    out.append(text.slice(at));
    return out;
  }

  const LINE_KINDS = [["ul", /^\s*[-*+]\s+/], ["ol", /^\s*\d+[.)]\s+/], ["quote", /^\s*>\s?/], ["table", /^\s*\|/], ["callout", /^\s*\[!\w+\]/]];
  function markdown(text) {
    const out = document.createDocumentFragment();
    const groups = [];
    for (const line of (text || "").split("\n")) {
      if (!line.trim()) { groups.push(null); continue; }
      const found = LINE_KINDS.find(([, re]) => re.test(line));
      const kind = found ? found[0] : /^#{1,6}\s/.test(line) ? "heading" : "p";
      const last = groups[groups.length - 1];
      if (last && last.kind === kind && kind !== "heading" && kind !== "callout") last.lines.push(line);
      else if (last && last.kind === "ul" && kind === "p" && /^\s+/.test(line)) last.lines[last.lines.length - 1] += ` ${line.trim()}`;
      else groups.push({ kind, lines: [line] });
    }
    for (const g of groups) {
      if (!g) continue;
      if (g.kind === "ul" || g.kind === "ol") {
        const re = LINE_KINDS.find(([k]) => k === g.kind)[1];
        out.append(el(g.kind, {}, g.lines.map((l) => el("li", {}, inline(l.replace(re, ""))))));
      } else if (g.kind === "quote") {
        out.append(el("blockquote", {}, markdown(g.lines.map((l) => l.replace(/^\s*>\s?/, "")).join("\n"))));
      } else if (g.kind === "callout") {
        out.append(el("p", { class: "callout" }, el("strong", {}, inline(g.lines[0].replace(/^\s*\[!\w+\]\s*/, "")))));
      } else if (g.kind === "table") {
        const rows = g.lines.filter((l) => !/^\s*\|?[\s:|-]+\|?\s*$/.test(l)).map((l) => l.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim()));
        const [head, ...body] = rows;
        out.append(el("div", { class: "table" }, el("table", {},
          el("thead", {}, el("tr", {}, head.map((c) => el("th", { scope: "col" }, inline(c))))),
          el("tbody", {}, body.map((r) => el("tr", {}, r.map((c) => el("td", {}, inline(c)))))))));
      } else if (g.kind === "heading") {
        out.append(el("h4", {}, inline(g.lines[0].replace(/^#+\s*/, ""))));
      } else {
        out.append(el("p", {}, inline(g.lines.join(" "))));
      }
    }
    return out;
  }

  // -- citations: the chunker's section keys (rag/chunking.py section_key) -----------------------
  function sectionKeys(sections) {
    const used = new Set();
    return sections.map((s) => {
      if (!s.text.trim()) return null;
      const base = s.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60).replace(/-+$/, "") || s.role;
      let key = base;
      for (let n = 2; used.has(key); n += 1) key = `${base}_${n}`;
      used.add(key);
      return key;
    });
  }

  async function copy(text) {
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; } catch (_) {
      const area = el("textarea", { readonly: "", class: "visually-hidden" }, text);
      document.body.append(area);
      area.select();
      try { ok = document.execCommand("copy"); } catch (__) { ok = false; }
      area.remove();
    }
    $("copy-status").textContent = ok ? `Copied ${text}` : `Copy failed; the citation is ${text}`;
  }

  const citeButton = (cite) => el("button", { type: "button", class: "cite", "data-cite": cite, "aria-label": `Copy citation ${cite}` },
    el("code", {}, cite), el("span", { class: "cite-copy", "aria-hidden": "true" }, "Copy"));

  // -- facets ------------------------------------------------------------------------------------
  async function loadFacets() {
    if (facets) return facets;
    try { facets = await api("/facets"); } catch (error) { facets = { domains: [], contexts: [], statuses: [], error }; }
    const fill = (id, values, name) => {
      const select = $(id);
      for (const { value, count } of values) select.append(el("option", { value }, `${name(value)} (${count})`));
    };
    fill("f-domain", facets.domains, cap);
    fill("f-context", orderContexts(facets.contexts), cap);
    fill("f-status", facets.statuses, cap);
    return facets;
  }

  function orderContexts(values) {
    const rank = (v) => (CONTEXTS.includes(v) ? CONTEXTS.indexOf(v) : CONTEXTS.length);
    return [...values].sort((a, b) => rank(a.value) - rank(b.value) || a.value.localeCompare(b.value));
  }

  function readerContexts() {
    const known = facets && facets.contexts.length ? orderContexts(facets.contexts).map((c) => c.value) : [];
    return [...new Set([...CONTEXTS.filter((c) => !known.length || known.includes(c)), ...known])];
  }

  // -- search view -------------------------------------------------------------------------------
  function setSelect(select, value) {
    if (value && ![...select.options].some((o) => o.value === value)) select.append(el("option", { value }, `${value} (unknown)`));
    select.value = value || "";
  }

  function formParams() {
    const params = new URLSearchParams();
    const q = $("q").value.trim();
    if (q) params.set("q", q);
    for (const [name, id] of [["domain", "f-domain"], ["context", "f-context"], ["status", "f-status"], ["min_confidence", "f-min"]]) {
      if ($(id).value) params.set(name, $(id).value);
    }
    if ($("f-group").checked) params.set("group", "1");
    return params;
  }

  async function showSearch(params, how) {
    const mine = ++seq;
    show("search");
    await loadFacets();
    if (mine !== seq) return;
    lastSearch = location.pathname + location.search;
    const q = params.get("q") || "";
    $("q").value = q;
    setSelect($("f-domain"), params.get("domain"));
    setSelect($("f-context"), params.get("context"));
    setSelect($("f-status"), params.get("status"));
    setSelect($("f-min"), params.get("min_confidence"));
    $("f-group").checked = params.get("group") === "1";
    const results = $("results");
    const notice = $("notice");
    document.title = q ? `${q} - Pattern search` : "Pattern search";
    if (!q.trim()) {
      results.replaceChildren();
      notice.hidden = true;
      $("search-status").textContent = facets.error ? `Filters unavailable: ${facets.error.message}` : "";
      return;
    }
    const filters = {};
    for (const name of FILTERS) {
      const value = params.get(name);
      if (value) filters[name] = name === "min_confidence" ? Number(value) : value;
    }
    $("search-status").textContent = "Searching\u2026";
    results.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await api("/search", { query: q, k: 10, filters, group_duplicates: params.get("group") === "1", explain: true });
    } catch (error) {
      if (mine !== seq) return;
      results.removeAttribute("aria-busy");
      $("search-status").textContent = "";
      notice.hidden = true;
      results.replaceChildren(el("li", { class: "plain" }, errorBox(error)));
      return;
    }
    if (mine !== seq) return;
    results.removeAttribute("aria-busy");
    renderResults(data, q);
    if (how === "pop" && lastOpened) {
      const link = results.querySelector(`a.hit-title[data-slug="${CSS.escape(lastOpened)}"]`);
      if (link) link.focus();
    }
  }

  function describeFilters(f) {
    const parts = [];
    if (f.domain) parts.push(`domain ${f.domain}`);
    if (f.context) parts.push(`${f.context} reader`);
    if (f.status) parts.push(`status ${f.status}`);
    if (f.min_confidence != null) parts.push(`confidence \u2265 ${f.min_confidence}`);
    return parts.length ? ` (${parts.join(", ")})` : "";
  }

  function renderResults(data, q) {
    const hits = data.hits || [];
    const n = hits.length;
    $("search-status").textContent = n
      ? `${n} pattern${n === 1 ? "" : "s"} for \u201c${q}\u201d${describeFilters(data.filters || {})}`
      : `No pattern matches \u201c${q}\u201d${describeFilters(data.filters || {})}.`;
    const notice = $("notice");
    notice.hidden = data.no_good_match !== true;
    notice.replaceChildren(el("strong", {}, "No good match in this library."),
      n ? " The closest patterns are listed, but none fits this query well." : "");
    const terms = queryTerms(q);
    const context = (data.filters && data.filters.context) || "";
    $("results").replaceChildren(...hits.map((hit) => renderHit(hit, terms, context, data.fusion)));
  }

  function relevance(hit) {
    const r = hit.relevance;
    if (typeof r === "number" && r >= 0 && r <= 1) {
      return el("span", { class: "relevance" }, el("meter", { min: 0, max: 1, value: r, "aria-label": "Relevance" }), ` relevance ${Math.round(r * 100)}%`);
    }
    if (typeof r === "number") return el("span", { class: "relevance" }, `relevance ${fmt(r)}`);
    if (typeof r === "string") return el("span", { class: `relevance rel-${r.toLowerCase().replace(/[^a-z]+/g, "-")}` }, `relevance: ${r}`);
    if (r && typeof r === "object") return el("span", { class: "relevance" }, `relevance: ${r.label || r.level || fmt(r.score ?? r.value)}`);
    return el("span", { class: "relevance" }, `fused score ${fmt(hit.score, 3)}`);
  }

  // The tension chunk also carries the pattern's search keywords: a hint for retrieval, not a passage to read.
  // It is labelled as such and shown after the prose passages that matched.
  const KEYWORD_ROLES = new Set(["tension"]);

  function renderHit(hit, terms, context, fusion) {
    const found = hit.evidence || [];
    const evidence = [...found.filter((e) => !KEYWORD_ROLES.has(e.role)), ...found.filter((e) => KEYWORD_ROLES.has(e.role))];
    const retrievers = Object.entries(hit.retrievers || {});
    const passage = (e) => {
      const hint = KEYWORD_ROLES.has(e.role);
      return el("li", hint ? { class: "keyword-hint" } : {},
        el("p", { class: "passage-head" },
          hint ? el("span", { class: "hint", title: "The pattern's tension and search keywords, which helped find it" }, "Search hints (tension and keywords)")
            : el("a", { href: patternUrl(hit.slug, context, e.chunk_id.split("#")[1]), "data-nav": "" }, e.section),
          " ", citeButton(e.chunk_id)),
        el("p", { class: "snippet" }, highlight(e.snippet || "", terms)));
    };
    const [best, ...more] = evidence;
    return el("li", { class: hit.pinned ? "hit pinned" : "hit", "data-slug": hit.slug },
      el("div", { class: "hit-head" },
        el("span", { class: "rank", "aria-label": `rank ${hit.rank}` }, String(hit.rank)),
        el("h2", {}, el("a", { class: "hit-title", href: patternUrl(hit.slug, context), "data-nav": "", "data-slug": hit.slug }, hit.title)),
        hit.pinned ? el("span", { class: "badge", title: "Put first: the query names this pattern" }, "pinned") : null,
        relevance(hit)),
      el("div", { class: "hit-about" },
        hit.name_match ? el("p", { class: "meta" }, "Matches the name \u201c", hit.name_match, "\u201d") : null,
        hit.context_label ? el("p", { class: "label" }, el("span", { class: "label-for" }, `As ${hit.context}: `), hit.context_label) : null,
        el("p", { class: "summary" }, highlight(hit.summary || "", terms)),
        hit.domains && hit.domains.length ? el("ul", { class: "tags", "aria-label": "Domains" }, hit.domains.map((d) => el("li", {}, d))) : null,
        hit.duplicates && hit.duplicates.length ? el("p", { class: "duplicates" }, "Near-duplicates grouped here: ",
          hit.duplicates.map((s, i) => [i ? ", " : "", el("a", { href: patternUrl(s, context), "data-nav": "" }, s)])) : null,
        retrievers.length ? el("details", { class: "explain" },
          el("summary", {}, "Why this rank"),
          el("table", {},
            el("caption", {}, `Fused score ${fmt(hit.score, 3)}${fusion && fusion.method ? ` (${fusion.method})` : ""}`),
            el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Retriever"), el("th", { scope: "col" }, "Rank"), el("th", { scope: "col" }, "Raw score"))),
            el("tbody", {}, retrievers.map(([name, r]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, String(r.rank)), el("td", {}, fmt(r.score, 3))))))) : null),
      best ? el("div", { class: "evidence" },
        el("h3", {}, "Matched passages"),
        el("ul", {}, passage(best)),
        more.length ? el("details", { class: "more" }, el("summary", {}, `${more.length} more`), el("ul", {}, more.map(passage))) : null) : null);
  }

  // -- pattern view ------------------------------------------------------------------------------
  async function showPattern(slug, params) {
    const mine = ++seq;
    show("pattern");
    const view = $("pattern-view");
    const context = params.get("context") || "";
    const focusSwitch = view.contains(document.activeElement) && document.activeElement.name === "reader";
    if (!view.dataset.slug || view.dataset.slug !== slug) view.replaceChildren(el("p", { class: "status" }, "Loading\u2026"));
    const base = `/patterns/${enc(slug)}`;
    const [found, related, similar] = await Promise.allSettled([
      api(base + (context ? `?context=${enc(context)}` : "")), api(`${base}/related`), api(`${base}/similar?k=6`), loadFacets()]);
    if (mine !== seq) return;
    lastOpened = slug;
    if (found.status === "rejected") {
      view.dataset.slug = "";
      document.title = "Pattern not found - Pattern search";
      fill(view, backLink(), el("h1", { id: "p-title", tabindex: "-1" }, found.reason.status === 404 ? "Pattern not found" : "Cannot show this pattern"), errorBox(found.reason));
      $("p-title").focus();
      return;
    }
    const fresh = view.dataset.slug !== slug;
    view.dataset.slug = slug;
    renderPattern(view, found.value, related, similar);
    if (focusSwitch) {
      const radio = view.querySelector(`input[name="reader"][value="${CSS.escape(context)}"]`);
      if (radio) radio.focus();
    } else if (fresh && !location.hash) {
      $("p-title").focus();
    }
    if (location.hash) {
      const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (target) target.scrollIntoView();
    }
  }

  function backLink() {
    return el("p", { class: "crumbs" }, el("a", { href: lastSearch, "data-nav": "" }, "\u2190 Back to search"));
  }

  function renderPattern(view, data, related, similar) {
    const p = data.pattern;
    const context = data.context || "";
    const keys = sectionKeys(p.sections);
    const life = p.lifecycle || {};
    document.title = `${p.title} - Pattern search`;
    const labels = Object.entries(p.context_labels || {});
    labels.sort(([a], [b]) => (a === context ? -1 : b === context ? 1 : CONTEXTS.indexOf(a) - CONTEXTS.indexOf(b)));
    const meta = [
      ["Domains", p.domains.join(", ")], ["Tension", p.tension], ["Status", life.status], ["Confidence", life.confidence != null ? (life.confidence_stars != null ? `${fmt(life.confidence, 2)} (${life.confidence_stars} of 5 stars)` : fmt(life.confidence, 2)) : null],
      ["Version", life.version], ["Usage stage", life.usage_stage], ["Adoption", life.adoption_stage], ["Overall score", p.overall_score != null ? fmt(p.overall_score, 1) : null],
      ["Source file", p.path]].filter(([, v]) => v);
    fill(view,
      backLink(),
      el("header", { class: "p-head" },
        el("h1", { id: "p-title", tabindex: "-1" }, p.title),
        p.aliases.length ? el("p", { class: "meta" }, "Also known as ", p.aliases.join(", ")) : null,
        el("p", { class: "meta" }, "Cite the pattern as ", citeButton(p.slug))),
      el("fieldset", { class: "switcher" },
        el("legend", {}, "Read as"),
        el("div", { class: "switch-options" },
          [["", "Any reader"], ...readerContexts().map((c) => [c, cap(c)])].map(([value, name]) => el("span", {},
            el("input", { type: "radio", name: "reader", id: `reader-${value || "any"}`, value, checked: value === context }),
            el("label", { for: `reader-${value || "any"}` }, name))))),
      context ? el("p", { class: "lead-label", id: "lead-label" },
        el("span", { class: "label-for" }, `As ${context}: `), data.context_label || `This pattern has no ${context} label.`) : null,
      el("p", { class: "summary" }, p.summary),
      p.epigraph ? el("blockquote", { class: "epigraph" }, markdown(p.epigraph.replace(/^\s*>\s?/gm, ""))) : null,
      el("div", { class: "p-body" },
        el("div", { class: "p-main" },
          labels.length ? el("section", { class: "labels", "aria-labelledby": "labels-h" },
            el("h2", { id: "labels-h" }, "In each reader's words"),
            el("dl", {}, labels.map(([c, label]) => [el("dt", { class: c === context ? "current" : null }, cap(c)), el("dd", { class: c === context ? "current" : null }, label)]))) : null,
          p.sections.length ? el("nav", { class: "toc", "aria-label": "Sections" }, el("ol", {},
            p.sections.map((s, i) => (keys[i] ? el("li", {}, el("a", { href: `#${keys[i]}` }, s.title)) : null)),
            el("li", {}, el("a", { href: "#p-related" }, "Related patterns")), el("li", {}, el("a", { href: "#p-similar" }, "Similar patterns")))) : null,
          p.sections.map((s, i) => el("section", { class: "p-section", id: keys[i] || null, "aria-labelledby": `h-${i}` },
            el("div", { class: "section-head" }, el("h2", { id: `h-${i}` }, s.title), keys[i] ? citeButton(`${p.slug}#${keys[i]}`) : null),
            markdown(s.text)))),
        el("aside", { class: "p-side" },
          el("section", { "aria-labelledby": "meta-h" }, el("h2", { id: "meta-h" }, "About"),
            el("dl", { class: "facts" }, meta.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]))),
          renderGraph(p, related, context),
          renderSimilar(similar, context),
          renderProvenance(p.provenance || {}))));
  }

  function renderGraph(p, related, context) {
    const body = [el("h2", { id: "rel-h" }, "Related patterns")];
    if (related.status === "rejected") return el("section", { class: "graph", "aria-labelledby": "rel-h" }, body, errorBox(related.reason));
    const edges = related.value.related || [];
    const resolved = new Set(edges.filter((e) => e.direction !== "incoming").map((e) => `${e.slug} ${e.kind}`));
    const dangling = (p.relationships || []).filter((r) => r.target !== p.slug && !resolved.has(`${r.target} ${r.kind}`));
    const targets = new Map(); // each related pattern once, with all its relations (enables and complementary, say)
    for (const e of edges) targets.set(e.slug, [...(targets.get(e.slug) || []), e]);
    const items = [...targets.values()].map((group) => {
      const e = group[0];
      const unresolved = group.some((g) => g.resolved === false || g.dangling === true);
      const label = (g) => g.relation.replace(/_/g, " ");
      return el("li", { class: unresolved ? "edge dangling" : "edge", "data-slug": e.slug },
        group.map((g, i) => [i ? ", " : "", el("span", { class: "relation" }, el("span", { "aria-hidden": "true" }, ARROWS[g.direction] || ""), ` ${label(g)}`)]),
        " ", unresolved ? el("code", {}, e.slug) : el("a", { href: patternUrl(e.slug, context), "data-nav": "", class: "rel-link", "data-slug": e.slug }, e.title || e.slug),
        el("span", { class: "edge-meta" }, group.map((g) =>
          `${group.length > 1 ? `${label(g)}: ` : ""}${g.direction}: ${DIRECTION[g.direction] || g.direction}${g.weight != null ? ` \u00b7 weight ${fmt(g.weight)}` : ""}`).join("; ")),
        unresolved ? el("span", { class: "badge warn" }, "unresolved") : null,
        group.filter((g) => g.description).map((g) => el("p", { class: "edge-desc" }, group.length > 1 ? `${label(g)}: ${g.description}` : g.description)));
    });
    for (const r of dangling) {
      items.push(el("li", { class: "edge dangling" },
        el("span", { class: "relation" }, el("span", { "aria-hidden": "true" }, ARROWS.outgoing), ` ${r.kind.replace(/_/g, " ")}`),
        " ", el("code", {}, r.target), el("span", { class: "edge-meta" }, "outgoing: declared here"), el("span", { class: "badge warn" }, "unresolved: not in this library")));
    }
    body.push(items.length ? el("ul", { class: "edges" }, items) : el("p", { class: "meta" }, "No curated relationships."));
    return el("section", { class: "graph", id: "p-related", "aria-labelledby": "rel-h" }, body);
  }

  function renderSimilar(similar, context) {
    const head = el("h2", { id: "sim-h" }, "Similar patterns");
    if (similar.status === "rejected") return el("section", { "aria-labelledby": "sim-h" }, head, errorBox(similar.reason));
    const list = similar.value.similar || [];
    return el("section", { class: "similar", id: "p-similar", "aria-labelledby": "sim-h" }, head,
      list.length ? el("ol", {}, list.map((s) => el("li", {},
        el("a", { href: patternUrl(s.slug, context), "data-nav": "", class: "sim-link" }, s.title),
        el("span", { class: "edge-meta" }, ` cosine ${fmt(s.score)}, via `), el("code", {}, s.chunk_id)))) : el("p", { class: "meta" }, "None."));
  }

  function renderProvenance(prov) {
    const rows = [["License", prov.license], ["Attribution", prov.attribution], ["Collection", prov.collection], ["Contributors", (prov.contributors || []).join(", ")]].filter(([, v]) => v);
    if (!rows.length && !(prov.sources || []).length) return null;
    return el("section", { "aria-labelledby": "prov-h" }, el("h2", { id: "prov-h" }, "Provenance"),
      el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      (prov.sources || []).length ? el("ul", { class: "sources" }, prov.sources.map((s) => el("li", {}, s))) : null);
  }

  // -- navigation --------------------------------------------------------------------------------
  function show(which) {
    $("search-view").hidden = which !== "search";
    $("pattern-view").hidden = which !== "pattern";
    if (which !== "pattern") $("pattern-view").dataset.slug = "";
  }

  function route(how) {
    const match = location.pathname.match(/^\/p\/([^/]+)\/?$/);
    const params = new URLSearchParams(location.search);
    if (match) showPattern(decodeURIComponent(match[1]), params);
    else showSearch(params, how);
  }

  function go(url, how = "push") {
    if (url === location.pathname + location.search + location.hash) return route(how);
    const samePage = new URL(url, location.href).pathname === location.pathname;
    if (how === "replace") history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    if (!samePage && !url.includes("#")) window.scrollTo(0, 0);
    route(how);
  }

  function searchNow() {
    const params = formParams();
    const qs = params.toString();
    go(qs ? `/?${qs}` : "/");
  }

  function moveThroughResults(event) {
    if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
    const links = [...$("results").querySelectorAll("a.hit-title")];
    if (!links.length) return;
    const inQuery = event.target === $("q");
    if (inQuery && event.key !== "ArrowDown") return;
    const hit = event.target.closest && event.target.closest(".hit");
    const at = hit ? links.indexOf(hit.querySelector("a.hit-title")) : -1;
    let next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: links.length - 1 }[event.key];
    if (inQuery) next = 0;
    event.preventDefault();
    if (next < 0) $("q").focus();
    else links[Math.min(next, links.length - 1)].focus();
  }

  function start() {
    $("search-form").addEventListener("submit", (event) => { event.preventDefault(); searchNow(); });
    $("search-form").addEventListener("change", (event) => {
      if (event.target.id === "q") return;
      if ($("q").value.trim()) searchNow();
      else go(`/?${formParams()}`, "replace");
    });
    $("q").addEventListener("keydown", moveThroughResults);
    $("results").addEventListener("keydown", moveThroughResults);
    document.addEventListener("click", (event) => {
      const cite = event.target.closest("button.cite");
      if (cite) { copy(cite.dataset.cite); return; }
      const link = event.target.closest("a[data-nav]");
      if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      const url = new URL(link.href);
      go(url.pathname + url.search + url.hash);
    });
    document.addEventListener("change", (event) => {
      if (event.target.name !== "reader") return;
      const slug = $("pattern-view").dataset.slug;
      if (slug) go(patternUrl(slug, event.target.value));
    });
    window.addEventListener("popstate", () => route("pop"));
    api("/health").then((h) => { $("index-info").textContent = `Index ${h.index_version} \u00b7 ${h.patterns} patterns`; }, () => {});
    route("load");
  }

  start();
})();
