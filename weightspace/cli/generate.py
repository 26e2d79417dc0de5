"""`weightspace generate`: an expert from observed frames, with no gradient step on the expert (with
``--tune-steps``, a flow generator is first tuned toward the frames by adjoint matching)."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from weightspace.cli.common import (
    console,
    non_negative_int,
    positive_int,
    seed,
)
from weightspace.errors import ConfigError


def run(args: argparse.Namespace) -> None:
    import torch

    from weightspace.evaluate.adaptation import observed_frames
    from weightspace.evaluate.shift import RANGE_FLAG
    from weightspace.pipeline.generation import save_expert
    from weightspace.pipeline.run import Run
    from weightspace.storage import claim_output, load_tensors

    run = Run.load(args.run)
    if (args.env is None) == (args.frames is None):
        raise ConfigError("give exactly one of --env INDEX (simulated observation) or --frames FILE.safetensors")
    if args.frames is not None:
        tensors = load_tensors(args.frames)[0]
        if "frames" not in tensors:
            raise ConfigError(f"{args.frames} must hold a tensor named 'frames' shaped [L, *state]")
        observed, env_params, label = tensors["frames"].float()[None], None, args.frames
        source = {}
    else:
        system = run.zoo.system()
        if not 0 <= args.env < len(system.environments()):
            raise ConfigError(f"--env must be in [0, {len(system.environments()) - 1}] for {system.name}")
        index = torch.tensor([args.env])
        observed = observed_frames(system, index, args.length, run.zoo.manifest["seed"])
        env_params, label = system.environments()[index].float(), f"environment {args.env}"
        m = run.zoo.manifest
        source = {"system": m["system"], "profile": m["profile"], "system_settings": m["system_settings"]}
        source |= {"env_index": args.env, "env_params": dict(zip(system.param_names, env_params[0].tolist()))}
    tuning = {}
    if args.tune_steps is not None:
        from weightspace.nn.adjoint_matching import AdjointMatchingConfig
        from weightspace.pipeline.reward_tuning import tune_toward_frames

        config, start = AdjointMatchingConfig(steps=args.tune_steps), time.perf_counter()
        run, losses = tune_toward_frames(run, observed, config, seed=args.seed)
        tuning = {"adjoint_matching": {**asdict(config), "first_loss": losses[0], "last_loss": losses[-1]}}
        console.print(
            f"tuned the generator toward the frames: {args.tune_steps} steps in {time.perf_counter() - start:.1f} s"
        )
    out = run.generate(observed, args.n, seed=args.seed, env_params=env_params)
    record = {"observed": label, "frames": observed.shape[1], "candidates": args.n, "residual": float(out.residual[0])}
    range_score = float(out.range_score[0])
    record |= tuning | {"shift": {"range": range_score, "range_flag": range_score > RANGE_FLAG}}
    record |= {"method": run.method, "dt": run.zoo.dt, **source}
    with claim_output(args.out, "expert", force=args.force):
        save_expert(run.zoo.adapter, {k: v[0] for k, v in out.params.items()}, args.out, record)
    console.print(
        f"generated a {run.zoo.adapter.name} expert for {label} from {observed.shape[1]} frames in "
        f"{1000 * out.seconds:.1f} ms: best of {args.n} candidates (residual {float(out.residual[0]):.4g}, "
        f"{int(out.rejected[0])} rejected); wrote {args.out}/expert.safetensors and config.json"
    )
    if range_score > RANGE_FLAG:
        console.print(
            f"[yellow]shift: the prompter places these frames outside the seen parameter range (score "
            f"{range_score:.2f} > {RANGE_FLAG}); the expert is an extrapolation[/yellow]"
        )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate an expert from observed frames, with no gradient step")
    p.add_argument("--run", required=True, help="a trained run directory")
    p.add_argument(
        "--env", type=non_negative_int, default=None, help="observe this environment (index in the system's grid)"
    )
    p.add_argument("--frames", default=None, help="or a safetensors file with a tensor 'frames' [L, *state]")
    p.add_argument("--length", type=positive_int, default=4, help="frames observed with --env (default: 4)")
    p.add_argument("--n", type=positive_int, default=16, help="candidates sampled; the best on the frames is kept")
    p.add_argument("--out", required=True, help="folder for expert.safetensors and config.json")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder weightspace did not create (its expert.safetensors and config.json "
        "are replaced)",
    )
    p.add_argument("--seed", type=seed, default=0, help="sampling seed (default: 0)")
    p.add_argument(
        "--tune-steps",
        type=positive_int,
        default=None,
        help="first tune the run's flow generator toward the frames for this many adjoint-matching steps "
        "(a flow-matching run; default: no tuning)",
    )
    p.set_defaults(func=run)
