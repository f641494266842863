"""The evaluation harness: query sets and qrels, TREC runs, ranx metrics, reports, variant tables (ablation, tuning)."""
