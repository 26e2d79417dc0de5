"""Bench results: rows gathered from a bench folder, aggregated over seeds, written as JSON, CSV,
paper-style Markdown tables and PNG plots.

``write_results`` gathers each cell's evaluation rows (labelled with the cell: system label, group,
seed, sweep) into ``results.json``; ``write_report`` reads only that file, so ``weightspace report
DIR`` redraws tables and plots without recomputing anything. Every table reports the mean over
seeds (± their std when there are several) of each row's RMSE, which is itself pooled over the
test trajectories of a split's environments on per-channel normalized states. A "better" needs more
than a lower mean: ``comparisons`` pairs each method with the matrix's main method environment by
environment and seed (:func:`paired_comparison`), and gives a verdict only when a bootstrap
interval over environments excludes zero over at least :data:`MIN_SEEDS` seeds.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from weightspace.errors import StorageError
from weightspace.evaluate.evaluation import EVALUATED_SPLITS
from weightspace.plots import plot_environment_map, plot_error_curves, plot_generation_cost, plot_sweep
from weightspace.storage import read_json, write_json, write_text

GROUP_KEYS = ("system", "architecture", "method", "group", "sweep", "sweep_value", "split")
"""A summary row per distinct value of these: a cell without its seed, and a split."""
AVERAGED = ("rmse_std", "ssim_mean", "valid_horizon", "seconds_per_env", "gen_latency_ms", "nn_ratio")
AVERAGED += ("encoder_function_error", "encoder_nearest_training_error", "permuted_10pct_function_change")
AVERAGED += ("adapted_parameters",)
"""Scalar fields of the rows that the summary averages over seeds."""
CSV_COLUMNS = (*GROUP_KEYS, "n_seeds", "rmse_mean", "rmse_seed_std", "ratio_to_reference", "reference_method")
CSV_COLUMNS += AVERAGED


def gather(plan: Any, out: Path) -> list[dict[str, Any]]:
    """Rows of every evaluated cell of a bench plan (:class:`weightspace.bench.BenchPlan`)."""
    rows = []
    for cell in plan.cells:
        path = out / "cells" / f"{plan.evaluation[cell.id]}.json"
        if not path.is_file():
            continue
        sweep, value = cell.sweep or (None, None)
        for row in json.loads(path.read_text()):
            held = row.pop("encoder_held_out", {})
            rows.append(
                {
                    **row,
                    # a generated row carries its cell's label; the baselines cell holds several methods
                    "method": row["method"] if cell.group == "baseline" else cell.method,
                    "system": cell.system,
                    "cell": cell.id,
                    "group": cell.group,
                    "seed": cell.seed,
                    "sweep": sweep,
                    "sweep_value": value,
                    "nn_ratio": row.get("memorization", {}).get("ratio_other_env"),
                    "encoder_function_error": held.get("function_error"),
                    "encoder_nearest_training_error": held.get("nearest_training_function_error"),
                    "permuted_10pct_function_change": held.get("permuted_10pct_function_change"),
                }
            )
    return rows


def _mean(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell and split: scalar fields averaged over seeds, ``rmse_seed_std`` their spread,
    per-step and per-environment RMSE averaged, and the ratio to One-per-Env of the same split."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row.get(k) for k in GROUP_KEYS)].append(row)
    summary = []
    for key, members in groups.items():
        rmse = [m["rmse_mean"] for m in members]
        steps = zip(*(m["rmse_per_step"] for m in members))
        per_env: dict[int, list] = defaultdict(list)
        for m in members:
            for e in m["per_env"]:
                per_env[e["env_index"]].append(e)
        record = dict(zip(GROUP_KEYS, key))
        record |= {
            "n_seeds": len(members),
            "rmse_mean": statistics.fmean(rmse),
            "rmse_seed_std": statistics.stdev(rmse) if len(rmse) > 1 else 0.0,
            # the method's roles (weightspace.method.Method), recorded in its rows
            "reference": any(m.get("reference", False) for m in members),
            "fine_tunes_observed": any(m.get("fine_tunes_observed", False) for m in members),
            "rmse_per_step": [statistics.fmean(s) for s in steps],
            "per_env": [{**es[0], "rmse": statistics.fmean(e["rmse"] for e in es)} for es in per_env.values()],
        }
        for name in AVERAGED:
            record[name] = _mean(m.get(name) for m in members)
        budgets: dict[int, list] = defaultdict(list)
        for point in (p for m in members for p in m.get("budget_curve", ())):
            budgets[point["steps"]].append(point)
        if budgets:
            record["budget_curve"] = [
                {"steps": k, **{f: statistics.fmean(p[f] for p in ps) for f in ("rmse", "seconds_per_env")}}
                for k, ps in sorted(budgets.items())
            ]
        summary.append(record)
    reference = {(r["system"], r["architecture"], r["split"]): r for r in summary if _is_upper(r)}
    for r in summary:
        ref = reference.get((r["system"], r["architecture"], r["split"]))
        r["ratio_to_reference"] = r["rmse_mean"] / ref["rmse_mean"] if ref and ref["rmse_mean"] else None
        r["reference_method"] = ref["method"] if ref else None
    return summary


MIN_SEEDS = 3
"""Fewer seeds than this give no verdict: one seed is a smoke test, not a result."""
NO_VERDICT_SEEDS = f"not enough seeds (n < {MIN_SEEDS}): no verdict"
NO_VERDICT_ENVS = "not enough environments (n < 2): no verdict"


def paired_comparison(
    main_rows: list[dict[str, Any]],
    other_rows: list[dict[str, Any]],
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The paired difference of RMSE, other minus main, of two methods' rows (one row per seed, each
    with ``seed`` and ``per_env``) on one system, architecture and split.

    Seeds that both sides hold are paired; an environment (by ``env_index``) counts only if both sides
    scored it in every paired seed, else it is dropped (``n_envs_dropped``). Per environment the
    differences are averaged over the seeds; ``wins`` counts the environments where the main method's
    RMSE is lower; ``mean_diff`` is their mean over environments and
    ``ci_low``/``ci_high`` its percentile bootstrap interval, resampling environments
    (``numpy.random.default_rng(seed)``, ``resamples`` draws). ``verdict`` is the main method's:
    "better" (interval above zero: the other's RMSE is higher), "worse" (below zero) or "tie", and
    no verdict with fewer than :data:`MIN_SEEDS` paired seeds or fewer than 2 environments."""

    def by_seed(rows: list[dict[str, Any]]) -> dict[Any, dict[int, float]]:
        return {r["seed"]: {e["env_index"]: float(e["rmse"]) for e in r["per_env"]} for r in rows}

    main, other = by_seed(main_rows), by_seed(other_rows)
    seeds = sorted(set(main) & set(other))
    envs_seen = {i for side in (main, other) for s in seeds for i in side[s]}
    envs = sorted(i for i in envs_seen if all(i in main[s] and i in other[s] for s in seeds))
    diffs = np.array([statistics.fmean(other[s][i] - main[s][i] for s in seeds) for i in envs])
    result: dict[str, Any] = {
        "mean_diff": None,
        "ci_low": None,
        "ci_high": None,
        "ci_level": level,
        "resamples": resamples,
        "n_envs": len(envs),
        "wins": int((diffs > 0).sum()) if envs else 0,
        "n_envs_dropped": len(envs_seen) - len(envs),
        "n_seeds": len(seeds) if envs else 0,
    }
    if envs:
        rng = np.random.default_rng(seed)
        means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
        tail = 100 * (1 - level) / 2
        low, high = np.percentile(means, [tail, 100 - tail])
        result |= {"mean_diff": float(diffs.mean()), "ci_low": float(low), "ci_high": float(high)}
    if result["n_seeds"] < MIN_SEEDS:
        result["verdict"] = NO_VERDICT_SEEDS
    elif len(envs) < 2:
        result["verdict"] = NO_VERDICT_ENVS
    elif result["ci_low"] > 0:
        result["verdict"] = "better"
    elif result["ci_high"] < 0:
        result["verdict"] = "worse"
    else:
        result["verdict"] = "tie"
    return result


def compare(rows: list[dict[str, Any]], main: str | None) -> list[dict[str, Any]]:
    """:func:`paired_comparison` of the main method against every other method and baseline, and of
    every ablation, per system, architecture and split (sweeps left out)."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("sweep") is None and r.get("per_env") is not None:
            cells[(r["system"], r["architecture"], r["split"], r["group"], r["method"])].append(r)
    comparisons = []
    for (system, arch, split, group, method), others in cells.items():
        main_rows = cells.get((system, arch, split, "method", main))
        if not main_rows or group not in ("method", "baseline", "ablation") or (group, method) == ("method", main):
            continue
        comparisons.append(
            {
                "system": system,
                "architecture": arch,
                "split": split,
                "method": method,
                "group": group,
                "main_method": main,
                **paired_comparison(main_rows, others),
            }
        )
    order = {split: i for i, split in enumerate(EVALUATED_SPLITS)}
    return sorted(comparisons, key=lambda c: (c["system"], c["architecture"], order.get(c["split"], len(order))))


def comparisons_table(comparisons: list[dict[str, Any]], main: str) -> str:
    """Markdown: one row per paired comparison."""

    def number(value: float | None, fmt: str = "{:+.4f}") -> str:
        return "-" if value is None else fmt.format(value)

    lines = [
        f"| system / arch | split | method vs {main} | mean Δ RMSE | "
        f"{100 * (comparisons[0]['ci_level'] if comparisons else 0.95):.0f}% CI | {main} wins / environments "
        f"| seeds | verdict for {main} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        envs = f"{c.get('wins', '-')} / {c['n_envs']}"
        envs += f" ({c['n_envs_dropped']} unmatched dropped)" if c["n_envs_dropped"] else ""
        ci = "-" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        lines.append(
            f"| {c['system']} / {c['architecture']} | {c['split']} | {c['method']} ({c['group']}) "
            f"| {number(c['mean_diff'])} | {ci} | {envs} | {c['n_seeds']} | {c['verdict']} |"
        )
    return "\n".join(lines)


def ceiling_warnings(summary: list[dict[str, Any]]) -> list[str]:
    """A line for each method that beats the reference (One-per-Env) in domain (``test_in``), where
    the reference trains on the very environment it is scored on: the ceiling is weak there, and
    ratios to it overstate how close a method comes to the best possible expert."""
    reference = {(r["system"], r["architecture"]): r for r in summary if _is_upper(r) and r["split"] == "test_in"}
    warnings = []
    for r in summary:
        ref = reference.get((r["system"], r["architecture"]))
        if ref is None or _is_upper(r) or r["split"] != "test_in" or r["sweep"] is not None:
            continue
        if r["rmse_mean"] < ref["rmse_mean"]:
            warnings.append(
                f"{r['method']} ({r['group']}) beats the reference {ref['method']} in domain on {r['system']} / "
                f"{r['architecture']} ({r['rmse_mean']:.4f} against {ref['rmse_mean']:.4f}): the ceiling is weak "
                "there, so ratios to it flatter every method"
            )
    return warnings


def _is_upper(row: dict[str, Any]) -> bool:
    """Trained on the test environment itself (a reference method such as One-per-Env): the
    denominator of the ratio column, never bolded."""
    return row["reference"] and row["group"] == "baseline"


def write_results(plan: Any, out: Path, failed: dict[str, str], matrix_path: str) -> dict[str, Any]:
    """``results.json`` and ``results.csv`` in ``out`` from the bench plan's evaluated cells."""
    rows = gather(plan, out)
    timings = []
    for key in plan.nodes:
        path = out / "timings" / f"{key}.json"
        if path.is_file():
            timings.append({"node": key, **json.loads(path.read_text())})
    results = {
        "matrix": matrix_path,
        "main_method": plan.main_method,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cells": len(plan.cells),
        "failed": [{"node": k, "label": plan.nodes[k].label, "error": v} for k, v in failed.items()],
        "rows": rows,
        "summary": summarize(rows),
        "comparisons": compare(rows, plan.main_method),
        "timings": timings,
    }
    write_json(out / "results.json", results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(results["summary"])
    write_text(out / "results.csv", buffer.getvalue())
    return results


RESULTS_KEYS = {"matrix": str, "main_method": str, "written": str, "cells": int, "failed": list}
RESULTS_KEYS |= {"rows": list, "summary": list, "timings": list}
"""The keys of ``results.json`` and their types, as :func:`write_results` writes them."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_name(value: Any) -> bool:
    """A plain file name part: system and architecture name the report's plots."""
    return isinstance(value, str) and bool(value) and not any(c in "/\\" or not c.isprintable() for c in value)


def _is_numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)


def _is_environment(entry: Any) -> bool:
    """A ``per_env`` entry as the environment map reads it: its RMSE and parameter values."""
    if not isinstance(entry, dict) or not isinstance(entry.get("env_params"), dict):
        return False
    return _is_number(entry.get("rmse")) and _is_numbers(list(entry["env_params"].values()))


def _is_budget_point(point: Any) -> bool:
    """A ``budget_curve`` point: a fine-tuning budget in steps, its RMSE and seconds per environment."""
    if not isinstance(point, dict) or not isinstance(point.get("steps"), int) or isinstance(point["steps"], bool):
        return False
    return _is_number(point.get("rmse")) and _is_number(point.get("seconds_per_env"))


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _or_null(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


SUMMARY_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(("system", "architecture"), (_is_name, "a plain name (no '/')")),
    **dict.fromkeys(("method", "group", "split"), (_is_string, "a string")),
    "sweep": (_or_null(_is_string), "a string or null"),
    "sweep_value": (_or_null(_is_number), "a number or null"),
    "n_seeds": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer"),
    "rmse_mean": (_is_number, "a number"),
    "rmse_seed_std": (_is_number, "a number"),
    **dict.fromkeys(("reference", "fine_tunes_observed"), (_is_bool, "true or false")),
    "ratio_to_reference": (_or_null(_is_number), "a number or null"),
    "reference_method": (_or_null(_is_string), "a string or null"),
    "rmse_per_step": (_is_numbers, "a list of numbers"),
    "per_env": (lambda v: isinstance(v, list) and all(map(_is_environment, v)), "a list of {rmse, env_params}"),
}
"""The fields of a summary row that the report reads, each with its check and what it must be."""
OPTIONAL_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(AVERAGED, (_or_null(_is_number), "a number or null")),
    "budget_curve": (
        lambda v: isinstance(v, list) and all(map(_is_budget_point, v)),
        "a list of {steps, rmse, seconds_per_env}",
    ),
}
"""Fields of a summary row that may be absent (a matrix without fine-tuning budgets, older results)."""


def load_results(out: Path) -> dict[str, Any]:
    """``results.json`` of a bench folder, checked for the keys the report reads, so that a damaged
    or hand-edited file is named in one line (file and key) instead of failing deep in the report."""
    path = out / "results.json"
    if not path.is_file():
        raise StorageError(f"{out} holds no results.json (run `weightspace bench MATRIX --out {out}` first)")
    results = read_json(path)
    if not isinstance(results, dict):
        raise StorageError(f"{path} must hold a JSON object, got {type(results).__name__}")
    for key, kind in RESULTS_KEYS.items():
        if not isinstance(results.get(key), kind) or isinstance(results[key], bool):
            raise StorageError(f"{path}: {key!r} must be a {kind.__name__}, got {results.get(key)!r:.60}")
    env_params: dict[tuple[str, str], set[tuple[str, ...]]] = defaultdict(set)
    for i, row in enumerate(results["summary"]):
        _check_summary_row(path, f"summary row {i}", row)
        env_params[row["system"], row["architecture"]] |= {tuple(e["env_params"]) for e in row["per_env"]}
    for (system, arch), names in env_params.items():
        if len(names) > 1:  # the environment map reads every entry by the first one's names
            raise StorageError(
                f"{path}: 'per_env' entries of {system} / {arch} name different env_params: {sorted(names)}"
            )
    for i, f in enumerate(results["failed"]):
        if not (isinstance(f, dict) and isinstance(f.get("label"), str) and isinstance(f.get("error"), str)):
            raise StorageError(f"{path}: failed entry {i} must be an object with 'label' and 'error' strings")
    for i, t in enumerate(results["timings"]):
        if not (isinstance(t, dict) and isinstance(t.get("node"), str) and _is_number(t.get("seconds"))):
            raise StorageError(f"{path}: timings entry {i} must be an object with 'node' and numeric 'seconds'")
    return results


def _check_summary_row(path: Path, where: str, row: Any) -> None:
    """Raise a :class:`StorageError` naming ``path``, the row and the key unless ``row`` holds the
    fields the tables and plots index, with their types, down to each environment and budget point."""
    if not isinstance(row, dict):
        raise StorageError(f"{path}: {where} must be a JSON object, got {row!r:.60}")
    missing = [k for k in SUMMARY_FIELDS if k not in row]
    if missing:
        raise StorageError(f"{path}: {where} lacks {', '.join(missing)}")
    for key, (check, what) in (*SUMMARY_FIELDS.items(), *OPTIONAL_FIELDS.items()):
        if key in row and not check(row[key]):
            raise StorageError(f"{path}: {where}: {key!r} must be {what}, got {json.dumps(row[key])[:60]}")
    if row["sweep"] is not None and row["sweep_value"] is None:  # the sweep's table sorts its values
        raise StorageError(f"{path}: {where}: 'sweep_value' must be a number in sweep {row['sweep']!r}")
    if row["fine_tunes_observed"] and not _is_number(row.get("seconds_per_env")):
        raise StorageError(f"{path}: {where}: 'seconds_per_env' must be a number for a fine-tuning method")


def _fmt(row: dict[str, Any] | None, bold: bool = False) -> str:
    if row is None:
        return "-"
    text = f"{row['rmse_mean']:.4f}"
    if row["n_seeds"] > 1:
        text += f" ± {row['rmse_seed_std']:.4f}"
    return f"**{text}**" if bold else text


def _figure(row: dict[str, Any] | None, name: str, fmt: str = "{:.3g}") -> str:
    return "-" if row is None or row.get(name) is None else fmt.format(row[name])


def _table(
    summary: list[dict[str, Any]],
    labels: list[str],
    select: Callable[[dict[str, Any]], str | None],
    head: str = "method",
    extra: dict[str, Callable[[dict | None, dict | None], str]] | None = None,
) -> str:
    """Markdown: one row per label (``select`` maps a summary row to its label, or None to skip it);
    per system and architecture the RMSE on seen (``test_in``), validation (``val_out``) and test
    (``test_out``) environments, the test ratio to the reference method and the ``extra`` columns
    (each given the label's ``test_in`` and ``test_out`` rows); the lowest RMSE of each column in
    bold (the reference excluded)."""
    extra = extra or {}
    cell: dict[tuple, dict] = {}
    for r in summary:
        label = select(r)
        if label is not None:
            cell[(label, r["system"], r["architecture"], r["split"])] = r
    columns = _ordered((k[1], k[2]) for k in cell)
    header = [head]
    for system, arch in columns:
        refs = _ordered(r["reference_method"] for k, r in cell.items() if k[1:3] == (system, arch))
        header += [f"{system} / {arch} in", "val", "out", f"out ÷ {' / '.join(filter(None, refs)) or 'reference'}"]
        header += list(extra)
    best = {}
    for system, arch in columns:
        for split in EVALUATED_SPLITS:
            values = [r["rmse_mean"] for k, r in cell.items() if k[1:] == (system, arch, split) and not _is_upper(r)]
            best[(system, arch, split)] = min(values) if values else None
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in labels:
        parts = [label]
        for system, arch in columns:
            rows = [cell.get((label, system, arch, split)) for split in EVALUATED_SPLITS]
            for split, row in zip(EVALUATED_SPLITS, rows):
                is_best = row is not None and not _is_upper(row) and row["rmse_mean"] == best[(system, arch, split)]
                parts.append(_fmt(row, is_best))
            ratio = rows[-1] and rows[-1]["ratio_to_reference"]
            parts.append(f"{ratio:.2f}x" if ratio else "-")
            parts += [fn(rows[0], rows[-1]) for fn in extra.values()]
        lines.append("| " + " | ".join(parts) + " |")
    return "\n".join(lines)


def adaptation_cost_table(summary: list[dict[str, Any]], methods: list[str]) -> str:
    """Markdown rows of each method's out-of-domain adaptation time and adapted parameter count, per
    system and architecture ('' when no row has a time)."""
    rows = [r for r in summary if r["split"] == "test_out" and r["method"] in methods and r["seconds_per_env"]]
    if not rows:
        return ""
    lines = ["| system / arch | method | ms per environment | adapted parameters |", "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["system"], r["architecture"], methods.index(r["method"]))):
        count = r.get("adapted_parameters")
        lines.append(
            f"| {r['system']} / {r['architecture']} | {r['method']} | {1000 * r['seconds_per_env']:.1f} "
            f"| {'-' if count is None else f'{count:.0f}'} |"
        )
    return "\n".join(lines)


def _ordered(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def methods_table(results: dict[str, Any]) -> str:
    """The main table: every method and baseline (not the sweeps) per system, with the NN ratio."""
    plain = [r for r in results["summary"] if r["group"] in ("method", "baseline") and r["sweep"] is None]
    return _table(
        plain,
        _ordered(r["method"] for r in plain),
        lambda r: r["method"],
        extra={"NN ratio": lambda _in, out: _figure(out, "nn_ratio", "{:.2f}")},
    )


def write_report(out: Path, results: dict[str, Any] | None = None) -> list[Path]:
    """``report.md`` and its PNG plots in ``out``, from ``results.json``; returns the files written."""
    results = results or load_results(out)
    summary = results["summary"]
    main = results["main_method"]
    plain = [r for r in summary if r["sweep"] is None]
    methods = _ordered(r["method"] for r in plain if r["group"] in ("method", "baseline"))
    written = [out / "report.md"]
    sections = [
        f"# Bench report: {Path(results['matrix']).name}",
        f"{results['cells']} cells, written {results['written']}. RMSE of the whole autoregressive rollout on "
        "per-channel normalized states, pooled over the test trajectories of each split's environments (in: seen "
        "environments, new initial conditions; val: unseen validation environments, on which every setting is "
        "chosen; out: unseen test environments, only reported); mean over seeds (± their std when there are "
        "several). Lowest per column in bold, the reference method (trained on the evaluated environment itself; "
        "the ratio column's denominator) excluded.",
        "## Methods",
        methods_table(results),
        "NN ratio: median function distance from generated experts (out-domain) to their nearest zoo expert, over "
        "that between zoo experts of different environments; below 1, generated experts sit closer to the zoo "
        "than the zoo's environments sit to each other.",
    ]
    weak = ceiling_warnings(summary)
    if weak:
        sections += ["## Ceiling check", "\n".join(f"- {w}" for w in weak)]
    # results.json written before comparisons existed: pair them from its rows
    comparisons = results.get("comparisons")
    if comparisons is None:
        comparisons = compare(results["rows"], main)
    if comparisons:
        sections += [
            "## Paired comparisons",
            f"Δ is a method's RMSE minus `{main}`'s on the same test environment and seed, averaged over seeds per "
            f"environment, then over environments, with a {100 * comparisons[0]['ci_level']:.0f}% percentile "
            f"bootstrap interval over environments ({comparisons[0]['resamples']:,} resamples): "
            f"`{main}` is better where the interval lies above zero and worse where below; ties and no-verdicts "
            f"(fewer than {MIN_SEEDS} seeds, or fewer than 2 environments) are not wins.",
            comparisons_table(comparisons, main),
        ]
    ablations = _ordered(r["method"] for r in plain if r["group"] == "ablation")
    if ablations:
        sections += [
            "## Ablations",
            f"Each row changes one thing in `{main}`.",
            _table(
                plain,
                [main, *ablations],
                lambda r: (
                    r["method"] if r["group"] == "ablation" or (r["group"], r["method"]) == ("method", main) else None
                ),
                extra={
                    "encoder function error": lambda _in, out: _figure(out, "encoder_function_error"),
                    "nearest training expert": lambda _in, out: _figure(out, "encoder_nearest_training_error"),
                    "10% permutation change": lambda _in, out: _figure(out, "permuted_10pct_function_change"),
                },
            ),
            "Encoder function error: normalized MSE between decoded and original held-out zoo experts' outputs; "
            "nearest training expert: the same error for the closest expert the encoder trained on (the floor that "
            "retrieval sets). "
            "10% permutation change: how much decoded outputs move when 10% of hidden units are shuffled before "
            "encoding.",
        ]
    for sweep, title in (("observed_frames", "Observation length L"), ("zoo_size", "Zoo size (experts per seen env)")):
        swept = [r for r in summary if r["sweep"] == sweep]
        if not swept:
            continue
        png = out / f"rmse-vs-{sweep.replace('_', '-')}.png"
        plot_sweep(swept, sweep, title, png)
        written.append(png)
        values = [str(v) for v in sorted({r["sweep_value"] for r in swept})]
        sections += [
            f"## {title}",
            f"`{main}` with each value.",
            _table(swept, values, lambda r: str(r["sweep_value"]), head=sweep),
            f"![{title}]({png.name})",
        ]
    cost = _generation_cost(plain, main)
    if cost:
        png = out / "generation-vs-finetuning.png"
        plot_generation_cost(cost, png)
        written.append(png)
        rows = [
            f"| {c['system']} / {c['architecture']} ({c['finetune_method']}) | {c['generation_ms']:.0f}"
            f" | {c['generation_rmse']:.4f} | {c['finetune_ms']:.0f} | {c['finetune_rmse']:.4f} | {_reach_cells(c)} |"
            for c in cost
        ]
        sections += [
            "## Generation vs. fine-tuning",
            f"Per unseen environment: `{main}` generation (prompt, sample, decode, rebuild, pick the best candidate; "
            "no gradient step) against the baseline that fine-tunes the base on the same observed frames (named "
            "beside each system, batched over the environments), each as timed by the node that evaluated it. The "
            "last columns say how long fine-tuning needs to reach the generated experts' out-of-domain RMSE: the "
            "smallest of the matrix's `finetune_budgets` that does, or (≥) the largest tried when none does.",
            "\n".join(
                [
                    "| system (fine-tuning baseline) | generation (ms) | its out RMSE | fine-tuning (ms) "
                    "| its out RMSE | fine-tuning to reach generation's RMSE | that ÷ generation |",
                    "|---|---|---|---|---|---|---|",
                    *rows,
                ]
            ),
            f"![generation vs fine-tuning]({png.name})",
        ]
    adaptation = adaptation_cost_table(plain, methods)
    if adaptation:
        sections += [
            "## Adaptation cost",
            "Per method, out of domain (test environments): wall time per environment to adapt (its node's timing; "
            "generation includes sampling and selecting candidates), and the numbers fitted per environment where "
            "the method reports them (`adapted_parameters`). A one-off training on the seen environments is not "
            "in the time.",
            adaptation,
        ]
    figures = ["## Plots"]
    for system, arch in _ordered((r["system"], r["architecture"]) for r in plain):
        rows = [r for r in plain if (r["system"], r["architecture"]) == (system, arch) and r["method"] in methods]
        if not rows:
            continue
        slug = f"{system}-{arch}"
        png = out / f"step-errors-{slug}.png"
        plot_error_curves(rows, png)
        figures.append(f"![per-step error, {system} / {arch}]({png.name})")
        written.append(png)
        if plot_environment_map(rows, main, out / f"environment-map-{slug}.png"):
            written.append(out / f"environment-map-{slug}.png")
            figures.append(f"![{main} RMSE over the environment grid, {system} / {arch}](environment-map-{slug}.png)")
    sections += figures
    if results["failed"]:
        failed = [f"| {f['label']} | {' '.join(f['error'].split()).replace('|', '/')} |" for f in results["failed"]]
        sections += ["## Failed", "\n".join(["| node | error |", "|---|---|", *failed])]
    if results["timings"]:
        total: dict[str, float] = defaultdict(float)
        for t in results["timings"]:
            total[t["node"].split("-")[0]] += t["seconds"]
        sections += [
            "## Compute",
            "Seconds spent building each kind of node (when it was built; cached nodes are not rebuilt).",
            "\n".join(["| node | seconds |", "|---|---|", *(f"| {k} | {v:.0f} |" for k, v in total.items())]),
        ]
    write_text(out / "report.md", "\n\n".join(sections) + "\n")
    return written


def _reach_cells(cost: dict[str, Any]) -> str:
    reach = cost["reach"]
    if reach is None:
        return "not measured (no finetune_budgets) | -"
    bound = "" if reach["reached"] else "≥ "
    what = f"{reach['steps']} steps, {reach['ms']:.0f} ms" if reach["reached"] else f"not in {reach['steps']} steps"
    return f"{what} | {bound}{reach['ms'] / cost['generation_ms']:.1f}x"


def finetune_reach(curve: list[dict[str, float]], target_rmse: float) -> dict[str, Any]:
    """Where a fine-tuning baseline's budget curve first gets to ``target_rmse``: ``steps`` and ``ms`` per
    environment of the smallest budget that does (``reached``), else the largest budget tried
    (a lower bound on what reaching it would take)."""
    ordered = sorted(curve, key=lambda c: c["steps"])
    hit = next((c for c in ordered if c["rmse"] <= target_rmse), None)
    point = hit or ordered[-1]
    return {"reached": hit is not None, "steps": point["steps"], "ms": 1000 * point["seconds_per_env"]}


def _generation_cost(summary: list[dict[str, Any]], method: str | None) -> list[dict[str, Any]]:
    out_rows = {
        (r["system"], r["architecture"], r["method"], r["group"]): r for r in summary if r["split"] == "test_out"
    }
    finetuning = {
        (r["system"], r["architecture"]): r
        for r in summary
        if r["split"] == "test_out" and r["group"] == "baseline" and r["fine_tunes_observed"]
    }
    cost = []
    for system, arch in _ordered((r["system"], r["architecture"]) for r in summary):
        generated = out_rows.get((system, arch, method, "method"))
        finetuned = finetuning.get((system, arch))
        if generated and finetuned and generated.get("gen_latency_ms"):
            budgets = finetuned.get("budget_curve")
            cost.append(
                {
                    "system": system,
                    "architecture": arch,
                    "finetune_method": finetuned["method"],
                    "generation_ms": generated["gen_latency_ms"],
                    "generation_rmse": generated["rmse_mean"],
                    "finetune_ms": 1000 * finetuned["seconds_per_env"],
                    "finetune_rmse": finetuned["rmse_mean"],
                    # without budgets, the one fine-tuning run the baselines made (its steps not summarized)
                    "finetune_curve": budgets
                    or [
                        {"steps": None, "rmse": finetuned["rmse_mean"], "seconds_per_env": finetuned["seconds_per_env"]}
                    ],
                    "reach": finetune_reach(budgets, generated["rmse_mean"]) if budgets else None,
                }
            )
    return cost
