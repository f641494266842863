"""A tiny library for `rag adapt` tests: three topics, each with near-duplicates a negative must never be."""

from __future__ import annotations

from pathlib import Path

from support import front_matter, topic_body, write_pattern

# slug, title, topic, aliases. bread-baking extends the slug bread; hive-keeping shares the alias "Apiary" with bees;
# "Bicycle Repair Cafe" and "Bicycle Repair Cafes" have a title trigram Dice >= 0.7.
ADAPT_PATTERNS = (
    ("bread", "Sourdough Bread", "baking sourdough bread", ["Bakery Loaf", "Starter Culture"]),
    ("bread-baking", "Baking Loaves", "baking sourdough bread loaves", ["Oven Loaf"]),
    ("bees", "Honey Bees", "keeping honey bees", ["Apiary"]),
    ("hive-keeping", "Hive Keeping", "keeping honey bee hives", ["Apiary", "Hive Care"]),
    ("repair-cafe", "Bicycle Repair Cafe", "repairing bicycles together", []),
    ("bike-repair-cafes", "Bicycle Repair Cafes", "repairing bicycles together in cafes", ["Fix Night"]),
    ("compost", "Community Compost", "composting kitchen waste", ["Worm Bin"]),
)
LABELS = {"corporate": "a company cafeteria doing {t}", "activist": "a neighbourhood group doing {t}"}


def adapt_library(root: Path) -> Path:
    """Seven patterns; each yields problem 1, context 1, label 2, tension 1, alias len(aliases), title 1 pairs."""
    for slug, title, topic, aliases in ADAPT_PATTERNS:
        meta = front_matter(
            slug,
            title,
            summary=f"A pattern about {topic}.",
            aliases=aliases,
            context_labels={k: v.format(t=topic) for k, v in LABELS.items()},
        )
        meta["ontology"]["search_hints"] = {"primary_tension": f"quality of {topic} vs. time spent"}
        write_pattern(root, slug, meta, topic_body(topic))
    return root
