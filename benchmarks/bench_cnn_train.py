"""CNN training throughput on this machine: the ``fast`` (shipped) network against the paper's.

    python benchmarks/bench_cnn_train.py [--steps 20] [--paper-steps 3]

Times optimiser steps (forward + backward + AdamW) on batches of paper-grid profiles (4501 points),
after compilation, and prints samples/s for each and their ratio. Rendering is not included (it runs
in a producer thread during training, ≈ 3,000 profiles/s: see bench_dataset / docs/data.md).
Target (issue 4): ``fast`` ≥ 1,000 samples/s on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def rate(cfg, steps, batch):
    import jax.numpy as jnp
    import optax
    from flax import nnx
    from crystalmela_cnn_flax.network import build, n_params
    from crystalmela_cnn_flax.training import train_step

    net = build(cfg)
    opt = nnx.Optimizer(net, optax.adamw(1e-3), wrt=nnx.Param)
    step = nnx.jit(train_step)

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, 4501), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 7, batch))
    net.train()
    step(net, opt, x, y).block_until_ready()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step(net, opt, x, y)
    loss.block_until_ready()
    return steps * batch / (time.perf_counter() - t), n_params(net)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--paper-steps", type=int, default=3)
    args = ap.parse_args(argv)
    from crystalmela_cnn_flax.network import CONFIGS
    rates = {}
    for name in ("fast",):
        rates[name], n = rate(CONFIGS[name], args.steps, 256)
        print(f"{name:5}: {rates[name]:8.0f} samples/s  ({n:,} parameters, batch 256)")
    paper, n_paper = rate(CONFIGS["paper"], args.paper_steps, 32)
    print(f"paper: {paper:8.1f} samples/s  ({n_paper:,} parameters, batch 32)")
    for name, r in rates.items():
        print(f"ratio {name} / paper: {r / paper:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
