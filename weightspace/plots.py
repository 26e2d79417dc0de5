"""PNG previews of datasets (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from weightspace.dataset import Dataset  # noqa: E402
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
