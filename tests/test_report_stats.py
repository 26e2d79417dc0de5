"""The bench report's paired comparisons: a verdict needs an interval over environments that excludes
zero and at least three seeds; environments are matched by index; old results.json files get them too."""

import json

import pytest

from weightspace.bench.report import (
    NO_VERDICT_SEEDS,
    adaptation_cost_table,
    ceiling_warnings,
    compare,
    paired_comparison,
    summarize,
    write_report,
)


def rows(rmse_by_seed, method="m", group="method", split="test_out", skip=()):
    """One row per seed; rmse_by_seed[seed][i] is environment i's RMSE (indices in ``skip`` left out)."""
    return [
        {
            "system": "lv",
            "architecture": "mlp",
            "method": method,
            "group": group,
            "sweep": None,
            "split": split,
            "seed": seed,
            "per_env": [
                {"env_index": i, "env_params": {"a": float(i)}, "rmse": r}
                for i, r in enumerate(values)
                if i not in skip
            ],
        }
        for seed, values in enumerate(rmse_by_seed)
    ]


BASE = [[0.50, 0.42, 0.61, 0.38, 0.55, 0.47, 0.66, 0.40], [0.52, 0.40, 0.59, 0.41, 0.53, 0.49, 0.63, 0.43]]
BASE.append([0.49, 0.44, 0.60, 0.39, 0.57, 0.46, 0.65, 0.42])


def test_a_clear_improvement_over_three_seeds_is_better():
    worse = [[r + 0.05 + 0.01 * (i % 3) for i, r in enumerate(seed)] for seed in BASE]
    c = paired_comparison(rows(BASE), rows(worse))
    assert c["verdict"] == "better" and c["n_seeds"] == 3 and c["n_envs"] == 8 and c["n_envs_dropped"] == 0
    assert 0 < c["ci_low"] <= c["mean_diff"] <= c["ci_high"] and c["wins"] == 8
    assert c["mean_diff"] == pytest.approx(0.05 + 0.01 * (0 + 1 + 2 + 0 + 1 + 2 + 0 + 1) / 8)
    # the other way round: the main method is the worse one
    flipped = paired_comparison(rows(worse), rows(BASE))
    assert flipped["verdict"] == "worse" and flipped["ci_high"] < 0 and flipped["wins"] == 0
    # fixed-seed bootstrap: the same numbers every time
    assert paired_comparison(rows(BASE), rows(worse)) == c


def test_identical_methods_tie_and_noise_around_zero_is_no_win():
    same = paired_comparison(rows(BASE), rows(BASE))
    assert same["verdict"] == "tie" and same["ci_low"] <= 0 <= same["ci_high"] and same["mean_diff"] == 0
    noisy = [[r + (0.03 if i % 2 else -0.03) for i, r in enumerate(seed)] for seed in BASE]
    c = paired_comparison(rows(BASE), rows(noisy))
    assert c["verdict"] == "tie" and c["ci_low"] < 0 < c["ci_high"]


def test_fewer_than_three_seeds_give_no_verdict():
    much_worse = [[r + 1.0 for r in seed] for seed in BASE]
    for n in (1, 2):
        c = paired_comparison(rows(BASE[:n]), rows(much_worse[:n]))
        assert c["verdict"] == NO_VERDICT_SEEDS and c["n_seeds"] == n
        assert c["ci_low"] > 0  # the interval is still given; it just decides nothing
    # only seeds both sides hold count
    assert paired_comparison(rows(BASE), rows(much_worse[:2]))["verdict"] == NO_VERDICT_SEEDS


def test_environments_are_matched_by_index_and_unmatched_ones_dropped():
    worse = [[r + 0.1 for r in seed] for seed in BASE]
    shuffled = rows(worse, skip={2, 5})
    for row in shuffled:
        row["per_env"].reverse()  # order does not matter, the index does
    c = paired_comparison(rows(BASE, skip={7}), shuffled)
    assert c["n_envs"] == 5 and c["n_envs_dropped"] == 3
    assert c["mean_diff"] == pytest.approx(0.1) and c["verdict"] == "better"
    # an environment missing from one seed of one side is dropped too
    partial = rows(worse)
    partial[1]["per_env"] = [e for e in partial[1]["per_env"] if e["env_index"] != 0]
    c = paired_comparison(rows(BASE), partial)
    assert c["n_envs"] == 7 and c["n_envs_dropped"] == 1


def test_compare_pairs_the_main_method_with_the_others_per_split():
    worse = [[r + 0.1 for r in seed] for seed in BASE]
    all_rows = []
    for split in ("test_in", "test_out"):
        all_rows += rows(BASE, "main", split=split)
        all_rows += rows(worse, "one-for-all", group="baseline", split=split)
        all_rows += rows(BASE, "no-fn-loss", group="ablation", split=split)
    all_rows += [dict(r, sweep="observed_frames", method="main") for r in rows(worse, "main")]  # sweeps: left out
    comparisons = compare(all_rows, "main")
    got = {(c["split"], c["method"]): c["verdict"] for c in comparisons}
    assert got == {
        ("test_in", "one-for-all"): "better",
        ("test_out", "one-for-all"): "better",
        ("test_in", "no-fn-loss"): "tie",
        ("test_out", "no-fn-loss"): "tie",
    }
    assert all(c["main_method"] == "main" for c in comparisons)


def test_a_report_from_an_old_results_file_pairs_its_rows(tmp_path):
    worse = [[r + 0.1 for r in seed] for seed in BASE]
    all_rows = rows(BASE, "main", split="test_in") + rows(worse, "one-for-all", group="baseline", split="test_in")
    results = {
        "matrix": "m.toml",
        "main_method": "main",
        "written": "then",
        "cells": 6,
        "failed": [],
        "rows": all_rows,
        "summary": [],  # no methods table to draw: the comparisons come from the rows alone
        "timings": [],
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    write_report(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "## Paired comparisons" in report and "not wins" in report
    assert "| lv / mlp | test_in | one-for-all (baseline) | +0.1000 |" in report and "| 8 / 8 | 3 | better |" in report


def test_the_report_flags_a_method_that_beats_the_reference_in_domain_and_shows_three_splits(tmp_path):
    """Issue 27: a method below One-per-Env on seen environments means the ceiling is weak there; the
    methods table has a column per split (in, val, out) and the ratio is taken out of domain."""
    reference = [[0.2] * 8] * 3
    all_rows = []
    for split in ("test_in", "val_out", "test_out"):
        main = [[0.1] * 8] * 3 if split == "test_in" else [[0.4] * 8] * 3  # below the reference in domain only
        all_rows += rows(main, "main", split=split) + rows(reference, "one-per-env", group="baseline", split=split)
    for r in all_rows:
        r |= {"rmse_mean": r["per_env"][0]["rmse"], "rmse_per_step": [0.1], "reference": r["method"] == "one-per-env"}
    summary = summarize(all_rows)
    assert ceiling_warnings(summary) == [
        "main (method) beats the reference one-per-env in domain on lv / mlp (0.1000 against 0.2000): the ceiling "
        "is weak there, so ratios to it flatter every method"
    ]
    results = {"matrix": "m.toml", "main_method": "main", "written": "now", "cells": 6, "failed": []}
    write_report(tmp_path, {**results, "rows": all_rows, "summary": summary, "timings": []})
    report = (tmp_path / "report.md").read_text()
    assert "## Ceiling check" in report and "beats the reference one-per-env in domain" in report
    assert "| method | lv / mlp in | val | out | out ÷ one-per-env | NN ratio |" in report
    assert "| main | **0.1000 ± 0.0000** | **0.4000 ± 0.0000** | **0.4000 ± 0.0000** | 2.00x | - |" in report
    # a method above the reference everywhere raises no flag
    assert ceiling_warnings([r for r in summary if r["split"] != "test_in" or r["method"] != "main"]) == []


def test_the_adaptation_cost_table_lists_each_method_out_of_domain_with_its_adapted_parameters():
    def row(method, split, seconds, count=None):
        r = {"system": "s", "architecture": "a", "method": method, "split": split, "seconds_per_env": seconds}
        return r | ({"adapted_parameters": count} if count is not None else {})

    summary = [row("gen", "test_out", 0.2), row("ctx", "test_out", 0.03, 2), row("ctx", "val_out", 9.0, 2)]
    table = adaptation_cost_table(summary, ["gen", "ctx", "never-timed"])
    assert table.splitlines()[2:] == ["| s / a | gen | 200.0 | - |", "| s / a | ctx | 30.0 | 2 |"]
    assert adaptation_cost_table([row("gen", "test_out", 0.0)], ["gen"]) == ""
