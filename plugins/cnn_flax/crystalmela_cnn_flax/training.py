"""Training loop: profiles rendered on the fly from reflection lists, AdamW, early stopping on the
validation split with the best weights restored, class-rebalanced sampling."""
from __future__ import annotations

import queue
import threading
import time
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .network import CONFIGS, build, n_params, to_bytes

NETWORK_KEYS = {"arch", "downsample", "channels", "kernels", "hidden", "dropout"}


class CNNConfig(BaseModel):
    """The training configuration's fields, types and bounds: a typo'd key or a value of the wrong
    kind in ``--config`` is refused by name before any training, not ignored or met as a TypeError
    mid-run. Optional fields are those only some architectures (or runs) use."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arch: Literal["fast", "paper"]
    downsample: int | None = Field(None, ge=1)
    channels: list[int] | None = Field(None, min_length=1)
    kernels: list[int] | None = Field(None, min_length=1)
    hidden: int | None = Field(None, ge=1)
    dropout: float = Field(ge=0, lt=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch: int = Field(ge=1)
    steps: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    patience: int = Field(ge=1)
    balance_power: float = Field(ge=0)
    val_size: int | None = Field(None, ge=1)
    schedule: Literal["constant", "cosine"] | None = None
    select: Literal["accuracy", "balanced_accuracy"] | None = None


def _config(request) -> dict:
    """The named configuration updated with the user's keys, checked; unset optional keys are left
    out, so the card records what was given."""
    from crystalmela.plugin_api.errors import CrystalmelaError, settings_problem
    from crystalmela.plugin_api.forests import named_config
    cfg = {**named_config("cnn_flax", CONFIGS, "fast", request.config),
           "name": request.config.get("name", "fast")}
    try:
        return CNNConfig(**cfg).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise CrystalmelaError(f"cnn_flax configuration: {settings_problem(exc)}") from None


def train_step(model, optimizer, x, y):
    """One optimiser step on a batch: softmax cross-entropy, gradients, update; returns the loss.
    Plain, so this module imports without jax: ``train`` and the benchmark jit it (``nnx.jit``)."""
    import optax
    from flax import nnx

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def train(request):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx
    from tqdm import tqdm

    from crystalmela.plugin_api.training import classification_metrics

    cfg = _config(request)
    rng = np.random.default_rng(request.seed)
    train_set = request.reflections("train")
    val_set = request.reflections("val")
    val_idx = rng.permutation(len(val_set))[: cfg.get("val_size", 4000)]
    # inputs(): rendered (under drawn lab conditions when the request augments), put on the grid and
    # preprocessed exactly as predict does to a measured file
    Xv = request.inputs(val_set, val_idx) / request.grid.normalize_max
    yv = val_set.labels[val_idx]
    Xv_clean = (request.inputs(val_set, val_idx, augment=False) / request.grid.normalize_max
                if request.augment is not None else None)

    counts = np.bincount(train_set.labels, minlength=7).astype(float)
    w = np.where(counts > 0, counts, 1.0) ** -cfg["balance_power"]
    p = w[train_set.labels]
    p /= p.sum()

    net = build({k: v for k, v in cfg.items() if k in NETWORK_KEYS}, request.seed)
    lr = cfg["lr"]
    if cfg.get("schedule", "constant") == "cosine":
        # warm up, then decay to 2 % over the step budget: late steps refine instead of jittering
        lr = optax.warmup_cosine_decay_schedule(0.0, cfg["lr"], min(500, cfg["steps"] // 10 + 1),
                                                cfg["steps"], end_value=cfg["lr"] * 0.02)
    # Which val metric early stopping keeps the best weights by. "balanced_accuracy" for sets where
    # one class dominates (organic: 52 % monoclinic): plain accuracy can keep an early checkpoint
    # that answers the majority class for everything.
    select = cfg.get("select", "accuracy")
    opt = nnx.Optimizer(net, optax.adamw(lr, weight_decay=cfg["weight_decay"]), wrt=nnx.Param)
    step = nnx.jit(train_step)

    predict = nnx.jit(lambda m, x: jax.nn.softmax(m(x), axis=-1))

    def evaluate(X=None):
        X = Xv if X is None else X
        net.eval()
        probs = np.concatenate([np.asarray(predict(net, X[i:i + 1024])) for i in range(0, len(X), 1024)])
        net.train()
        return classification_metrics(yv, probs)

    # Rendering runs in a thread, a few batches ahead of the optimiser.
    batches: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def producer():
        r = np.random.default_rng(request.seed + 1)
        while not stop.is_set():
            idx = r.choice(len(train_set), size=cfg["batch"], p=p)
            seeds = r.integers(2**63, size=len(idx))     # fresh conditions at every step
            x = request.inputs(train_set, idx, seeds=seeds) / request.grid.normalize_max
            batches.put((x, train_set.labels[idx]))

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    best, best_acc, bad, history = None, -1.0, 0, []
    net.train()
    t0 = time.perf_counter()
    seen = 0
    try:
        with tqdm(total=cfg["steps"], disable=not request.progress, desc=f"cnn {request.dataset}") as bar:
            for s in range(1, cfg["steps"] + 1):
                x, y = batches.get()
                loss = step(net, opt, jnp.asarray(x), jnp.asarray(y))
                seen += len(y)
                bar.update()
                if s % cfg["eval_every"] == 0 or s == cfg["steps"]:
                    m = evaluate()
                    history.append({"step": s, "loss": float(loss), "val_accuracy": m["accuracy"],
                                    "val_balanced_accuracy": m["balanced_accuracy"]})
                    bar.set_postfix(loss=f"{float(loss):.3f}", val=f"{m['accuracy']:.3f}")
                    if m[select] > best_acc + 1e-4:
                        best_acc, best, bad = m[select], to_bytes(net), 0
                    else:
                        bad += 1
                        if bad >= cfg["patience"]:
                            break
    finally:
        stop.set()
        while not batches.empty():
            batches.get_nowait()
    elapsed = time.perf_counter() - t0
    from .network import from_bytes
    net_cfg = {k: v for k, v in cfg.items() if k in NETWORK_KEYS}
    best_net = from_bytes(net_cfg, best)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    (request.out_dir / "model.msgpack").write_bytes(best)
    net = best_net
    final = evaluate()
    metrics = {"val": final, **({"val_clean": evaluate(Xv_clean)} if Xv_clean is not None else {}),
               "history": history, "train_samples_seen": seen,
               "train_samples_per_second": round(seen / elapsed, 1), "train_seconds": round(elapsed, 1),
               "parameters": n_params(best_net), "train_size": int(len(train_set)),
               "train_per_class": np.bincount(train_set.labels, minlength=7).tolist()}
    return request.write_card("model.msgpack", settings={**cfg, "network": net_cfg}, metrics=metrics,
                              libraries=("jax", "flax", "optax"))
