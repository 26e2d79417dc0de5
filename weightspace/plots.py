"""PNG plots of datasets, evaluations and bench reports (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from weightspace.data.dataset import Dataset  # noqa: E402
from weightspace.storage import atomic_path  # noqa: E402


def _env_label(dataset: Dataset, params) -> str:
    return ", ".join(f"{n}={v:.3g}" for n, v in zip(dataset.attrs["param_names"], params.tolist()))


def _save(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write ``fig`` as a PNG atomically and free it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def plot_dataset_preview(dataset: Dataset, path: str | os.PathLike, n_envs: int = 4, n_times: int = 5) -> None:
    """Phase portraits (ODE states) or frames of channel 0 (fields) of a few seen and unseen environments."""
    picks = []
    for split in ("train", "test_out"):
        s = dataset[split]
        firsts = {}
        for row, env in enumerate(s.env_index.tolist()):
            firsts.setdefault(env, row)
        picks += [(split, row) for row in list(firsts.values())[: n_envs // 2]]
    traj0 = dataset["train"].trajectories
    if traj0.dim() == 3:  # [n, T, D]: phase portraits of all trajectories of each picked environment
        fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.2), squeeze=False)
        names = dataset.attrs["channel_names"]
        for ax, (split, row) in zip(axes[0], picks):
            s = dataset[split]
            same = (s.env_index == s.env_index[row]).nonzero().flatten()
            for r in same.tolist():
                ax.plot(s.trajectories[r, :, 0], s.trajectories[r, :, 1], lw=1)
                ax.plot(s.trajectories[r, 0, 0], s.trajectories[r, 0, 1], "k.", ms=4)
            ax.set_title(f"{split}: {_env_label(dataset, s.env_params[row])}", fontsize=8)
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
    else:  # [n, T, C, H, W]: a few frames of channel 0
        T = traj0.shape[1]
        times = sorted({round(i * (T - 1) / (n_times - 1)) for i in range(n_times)})
        fig, axes = plt.subplots(len(picks), len(times), figsize=(2.0 * len(times), 2.1 * len(picks)), squeeze=False)
        for i, (split, row) in enumerate(picks):
            s = dataset[split]
            for j, t in enumerate(times):
                ax = axes[i, j]
                ax.imshow(s.trajectories[row, t, 0], cmap="RdBu_r")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"t = {t * dataset.dt:.3g}", fontsize=8)
                if j == 0:
                    ax.set_ylabel(f"{split}\n{_env_label(dataset, s.env_params[row])}", fontsize=7)
    fig.suptitle(f"{dataset.attrs['system']} ({dataset.attrs['profile']})")
    _save(fig, path, dpi=100)


def plot_error_curves(rows: list[dict], path: str | os.PathLike) -> None:
    """RMSE per rollout step of every method, one panel per split (the rows of an evaluation)."""
    splits = sorted({r["split"] for r in rows})
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False, sharey=True)
    for ax, split in zip(axes[0], splits):
        for row in (r for r in rows if r["split"] == split):
            steps = range(1, len(row["rmse_per_step"]) + 1)
            ax.plot(steps, row["rmse_per_step"], label=f"{row['method']} ({row['rmse_mean']:.3g})")
        ax.set_title(f"{rows[0]['system']} / {rows[0]['architecture']}: {split}")
        ax.set_xlabel("rollout step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("normalized RMSE")
    _save(fig, path)


def plot_finetune_curves(rows: list[dict], path: str | os.PathLike) -> None:
    """Validation loss while fine-tuning from each initialization, one panel per split (rows with ``finetune``)."""
    rows = [r for r in rows if "finetune" in r]
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.6), squeeze=False, sharey=True)
    for ax, row in zip(axes[0], rows):
        curves = row["finetune"]
        for name, values in curves["val_loss"].items():
            reached = curves["steps_to_target"][name]
            label = f"{name} init (target at {reached if reached is not None else '-'})"
            ax.plot(curves["steps"], values, marker=".", label=label)
        ax.axhline(curves["target_loss"], color="k", lw=0.8, ls="--", label="target (base, end of budget)")
        ax.set_title(f"{row['system']} / {row['architecture']}: {row['split']}")
        ax.set_xlabel("fine-tuning step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("validation loss (normalized MSE)")
    _save(fig, path)


SPLIT_STYLE = {"test_in": ("--", "in"), "val_out": (":", "val"), "test_out": ("-", "out")}
"""Line style and short label of each evaluated split in plots."""


def plot_sweep(rows: list[dict], sweep: str, title: str, path: str | os.PathLike) -> None:
    """RMSE against a swept value, one line per system and split (bench summary rows of one sweep)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for system, arch, split in sorted({(r["system"], r["architecture"], r["split"]) for r in rows}):
        line = sorted(
            (r for r in rows if (r["system"], r["architecture"], r["split"]) == (system, arch, split)),
            key=lambda r: r["sweep_value"],
        )
        ax.errorbar(
            [r["sweep_value"] for r in line],
            [r["rmse_mean"] for r in line],
            yerr=[r["rmse_seed_std"] for r in line],
            marker="o",
            ls=SPLIT_STYLE[split][0],
            label=f"{system} / {arch} ({SPLIT_STYLE[split][1]})",
        )
    ax.set_xlabel(sweep.replace("_", " "))
    ax.set_ylabel("rollout RMSE (normalized)")
    ax.set_title(title)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_generation_cost(cost: list[dict], path: str | os.PathLike) -> None:
    """Out-of-domain RMSE against milliseconds per unseen environment, one panel per system:
    generation as one point, the fine-tuning baseline as its curve over step budgets (each point labelled with
    its steps when known), so one sees how much fine-tuning buys the generated expert's accuracy."""
    fig, axes = plt.subplots(1, len(cost), figsize=(4.2 * len(cost), 3.6), squeeze=False)
    for ax, c in zip(axes[0], cost):
        curve = sorted(c["finetune_curve"], key=lambda p: p["steps"] or 0)
        ms = [1000 * p["seconds_per_env"] for p in curve]
        ax.plot(ms, [p["rmse"] for p in curve], "o-", color="tab:orange", label=c["finetune_method"])
        for x, p in zip(ms, curve):
            if p["steps"] is None:
                continue
            ax.annotate(f"{p['steps']}", (x, p["rmse"]), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ax.plot([c["generation_ms"]], [c["generation_rmse"]], "*", ms=12, color="tab:blue", label="generation")
        ax.set_xscale("log")
        ax.set_xlabel("ms per environment")
        ax.set_ylabel("out-of-domain RMSE")
        ax.set_title(f"{c['system']} / {c['architecture']}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("generating vs. fine-tuning an expert (labels: fine-tuning steps)", fontsize=9)
    _save(fig, path)


def plot_environment_map(rows: list[dict], method: str, path: str | os.PathLike) -> bool:
    """``method``'s RMSE over a 2-parameter environment grid, seen environments (in-domain test) as
    circles, validation ones as diamonds, test ones as squares (the paper's Figure 4). Returns False,
    writing nothing, when the system does not have exactly two environment parameters."""
    points = [(e, r["split"]) for r in rows if r["method"] == method and r["group"] == "method" for e in r["per_env"]]
    if not points or len(points[0][0]["env_params"]) != 2:
        return False
    names = list(points[0][0]["env_params"])
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    rmse = [e["rmse"] for e, _ in points]
    norm = matplotlib.colors.LogNorm(min(rmse), max(rmse)) if min(rmse) > 0 else None
    for split, marker, label in (("test_in", "o", "seen"), ("val_out", "D", "validation"), ("test_out", "s", "test")):
        sel = [e for e, s in points if s == split]
        if sel:
            scatter = ax.scatter(
                [e["env_params"][names[0]] for e in sel],
                [e["env_params"][names[1]] for e in sel],
                c=[e["rmse"] for e in sel],
                marker=marker,
                s=140,
                cmap="viridis",
                norm=norm,
                edgecolors="k" if split == "test_in" else "none",
                label=label,
            )
    fig.colorbar(scatter, ax=ax, label="rollout RMSE")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(f"{method}: {rows[0]['system']} / {rows[0]['architecture']}")
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)
    return True
