"""`rag eval --variants TABLE --set ...` through the real CLI on patterns/ indexed with the fake encoder: the
report's numbers are `rag eval`'s own, its decisions follow from them, and bad input exits 2 naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import ttest_rel
from typer.testing import CliRunner

from rag.cli import common as cli_common
from rag.cli.app import app
from rag.evaluation.sweep import decision, verdict
from rag.evaluation.variants import TABLES, changes, describe

pytest.importorskip("ranx")

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "eval" / "dev" / "patterns.jsonl"  # judged queries about patterns/, the library the fake index holds
METRICS = ("ndcg@10", "recall@10", "mrr@10", "precision@1")


@pytest.fixture(autouse=True)
def fake_model(monkeypatch, fake_encoder):
    monkeypatch.setattr(cli_common, "encoder", lambda: fake_encoder)
    monkeypatch.setattr(cli_common, "query_encoder", lambda: fake_encoder)


def rag(*args) -> object:
    result = CliRunner().invoke(app, ["eval", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """The first 12 dev queries, so a table of 15-23 variants runs in seconds."""
    path = tmp_path_factory.mktemp("sets") / "small.jsonl"
    path.write_text("".join(DEV.read_text(encoding="utf-8").splitlines(keepends=True)[:12]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def other_set(tmp_path_factory) -> Path:
    """The next 12 dev queries: a second set, named on the command line."""
    path = tmp_path_factory.mktemp("sets") / "other.jsonl"
    path.write_text("".join(DEV.read_text(encoding="utf-8").splitlines(keepends=True)[12:24]), encoding="utf-8")
    return path


def test_ablation_report_numbers_equal_rag_eval_of_each_retriever_alone(tmp_path, fake_index_dir, small_set, other_set):
    report = tmp_path / "out" / "ablation.md"
    result = rag(
        "--variants", "ablation", "--set", f"{fake_index_dir}:{small_set}", "--set", f"dev:{fake_index_dir}:{other_set}", "--report", report
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert (
        data["command"]
        == f"rag eval --variants ablation --set {fake_index_dir}:{small_set} --set dev:{fake_index_dir}:{other_set} --report {report}"
    )
    assert list(data["sets"]) == ["small", "dev"] and data["sets"]["small"]["scored"] == 12 and data["sets"]["dev"]["scored"] == 12
    assert [v["name"] for v in data["variants"]] == [v.name for v in TABLES["ablation"].variants]
    rows = {v["name"]: v for v in data["variants"]}
    for set_name, queries in (("small", small_set), ("dev", other_set)):
        single = rag(queries, "--retriever", "all", "--index-dir", fake_index_dir, "--json")
        assert single.exit_code == 0, single.output
        alone = json.loads(single.stdout)
        for retriever, row in (("hybrid", "hybrid (default)"), ("dense", "dense only"), ("lexical", "BM25 only (keywords+full text)")):
            assert rows[row]["sets"][set_name]["means"] == {m: alone["means"][retriever][m] for m in METRICS}, (set_name, row)
        # the paired test behind the decision, recomputed from `rag eval`'s per-query values
        a = [alone["per_query"]["dense"][q]["ndcg@10"] for q in sorted(alone["per_query"]["dense"])]
        b = [alone["per_query"]["hybrid"][q]["ndcg@10"] for q in sorted(alone["per_query"]["hybrid"])]
        test = rows["dense only"]["sets"][set_name]["vs_default"]["ndcg@10"]
        assert test["delta"] == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
        assert test["p_value"] == pytest.approx(ttest_rel(a, b).pvalue)
    text = report.read_text()
    assert text == result.stdout.rstrip("\n") + "\n"
    assert "```sh\n" + data["command"] + "\n```" in text
    default = rows["hybrid (default)"]["sets"]["dev"]["means"]["ndcg@10"]
    assert (
        "| hybrid (default) | all four retrievers, learned fusion | (default) | "
        f"{rows['hybrid (default)']['sets']['small']['means']['ndcg@10']:.3f} | {default:.3f} | default |" in text
    )
    dense = rows["dense only"]
    assert "`fusion=convex, weights.fulltext=-, weights.keywords=-, weights.names=-`" in text
    assert f"| {dense['decision']} |" in text.split("## small")[0]


def test_every_decision_follows_from_the_numbers(tmp_path, fake_index_dir, small_set):
    report = tmp_path / "tuning.md"
    result = rag(
        "--variants", "tuning", "--set", f"{fake_index_dir}:{DEV}", "--set", f"small:{fake_index_dir}:{small_set}", "--report", report
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["decision_rule"] == {"metric": "ndcg@10", "stat_test": "student", "max_p": 0.05}
    assert data["variants"][0]["decision"] == "default" and data["variants"][0]["changes"] == {}
    assert "ranker" in data  # the table has a learned-fusion row: its weights are stated
    seen = set()
    for row in data["variants"][1:]:
        verdicts = {}
        for name, entry in row["sets"].items():
            test = entry["vs_default"]["ndcg@10"]
            base = data["variants"][0]["sets"][name]["means"]["ndcg@10"]
            assert test["delta"] == pytest.approx(entry["means"]["ndcg@10"] - base)
            if test["p_value"] is None:
                expected = "no change" if test["delta"] == 0 else "within noise"
            elif test["p_value"] < 0.05:
                expected = "better" if test["delta"] > 0 else "worse"
            else:
                expected = "within noise"
            assert entry["verdict"] == expected, (row["name"], name)
            verdicts[name] = expected
        assert row["decision"] == (
            f"{verdicts['patterns']} on every set"
            if len(set(verdicts.values())) == 1
            else f"{verdicts['patterns']} on patterns; {verdicts['small']} on small"
        )
        assert row["changes"] and describe(row["changes"]) in report.read_text()
        seen |= set(verdicts.values())
    assert seen >= {"worse", "within noise"}, seen  # the fake encoder's dense retriever is weak: some rows differ

    # one row alone gives the same numbers as in the whole table
    alone = tmp_path / "one.md"
    one = rag("--variants", "tuning", "--set", f"{fake_index_dir}:{DEV}", "--row", "rrf k=5 (equal weights)", "--report", alone)
    assert one.exit_code == 0, one.output
    rows = json.loads(alone.with_suffix(".json").read_text())["variants"]
    assert [r["name"] for r in rows] == ["convex (round-1 default)", "rrf k=5 (equal weights)"]
    whole = next(r for r in data["variants"] if r["name"] == "rrf k=5 (equal weights)")
    assert rows[1]["sets"]["patterns"] == whole["sets"]["patterns"]
    assert "--row 'rrf k=5 (equal weights)'" in alone.read_text()


def test_verdict_and_decision_rules():
    assert verdict(0.02, 0.01, True) == "better"
    assert verdict(-0.02, 0.01, True) == "worse"
    assert verdict(0.05, 0.2, False) == "within noise"
    assert verdict(0.0, None, False) == "no change"
    assert decision({"bmn": "worse", "patterns": "worse"}) == "worse on every set"
    assert decision({"bmn": "better"}) == "better"
    assert decision({"bmn": "better", "patterns": "within noise"}) == "better on bmn; within noise on patterns"


def test_changes_are_derived_from_the_settings():
    ablation = TABLES["ablation"]
    assert changes(ablation.default.settings) == {}
    names = next(v for v in ablation.variants if v.name == "- names")
    assert describe(changes(names.settings)) == "weights.names=-, name_pin=2"
    roles = next(v for v in ablation.variants if v.name == "- section-role weights")
    assert describe(changes(roles.settings)) == "role_weights={}"
    for table in TABLES.values():
        assert len({v.name for v in table.variants}) == len(table.variants)
        assert all(changes(v.settings, table.default.settings) for v in table.variants[1:]), table.name  # every row changes something
        assert len({repr(v.settings) for v in table.variants}) == len(table.variants), table.name  # and no two rows are the same


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--variants", "nope", "--set", "{idx}:{dev}"), "error: unknown variant table 'nope'; the tables are ablation, tuning"),
        (("--variants", "ablation", "--set", "just-a-path"), "error: --set 'just-a-path': expected [NAME:]INDEX_DIR:QUERIES.jsonl"),
        (("--variants", "ablation", "--set", "a:b:c:d"), "error: --set 'a:b:c:d': expected [NAME:]INDEX_DIR:QUERIES.jsonl"),
        (("--variants", "ablation", "--set", "{idx}:"), "expected [NAME:]INDEX_DIR:QUERIES.jsonl"),
        (
            ("--variants", "ablation", "--set", "{idx}:missing.jsonl"),
            "error: --set '{idx}:missing.jsonl': queries file not found: missing.jsonl",
        ),
        (("--variants", "ablation", "--set", "/nowhere:{dev}"), "error: --set '/nowhere:{dev}': index directory not found: /nowhere"),
        (
            ("--variants", "ablation", "--set", "{idx}:{dev}", "--set", "{idx}:{dev}"),
            "are both named 'patterns'; name one with NAME:INDEX_DIR:QUERIES.jsonl",
        ),
        (("--variants", "ablation"), "error: --variants needs at least one --set [NAME:]INDEX_DIR:QUERIES.jsonl"),
        (("--variants", "ablation", "--set", "{idx}:{dev}", "--row", "nope"), "error: --row 'nope' is not a row of the ablation table"),
        (("--set", "{idx}:{dev}"), "error: --set needs --variants TABLE"),
        (("{dev}", "--variants", "ablation", "--set", "{idx}:{dev}"), "QUERIES applies only to a single query set"),
        (("--variants", "ablation", "--set", "{idx}:{dev}", "--retriever", "all"), "--retriever applies only to a single query set"),
        (("--variants", "ablation", "--set", "{idx}:{dev}", "--report", "x.json"), "--report names the Markdown file"),
        ((), "error: give a QUERIES file (with --index-dir), or --variants TABLE with --set INDEX_DIR:QUERIES.jsonl"),
    ],
)
def test_bad_tables_and_sets_exit_2_naming_the_problem(fake_index_dir, args, message):
    fill = {"idx": str(fake_index_dir), "dev": str(DEV)}
    result = rag(*(a.format(**fill) for a in args))
    assert result.exit_code == 2, result.output
    assert message.format(**fill) in result.stderr


def test_help_documents_the_variants_shape():
    result = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("--variants", "--set", "[NAME:]INDEX_DIR:QUERIES", "--row", "ablation", "tuning"):
        assert text in result.stdout, text
