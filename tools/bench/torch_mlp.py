#!/usr/bin/python3
"""PyTorch yardstick for Starling's trainer: MLP 784-256-128-10, ReLU, softmax cross-entropy,
one CPU thread.

    /usr/bin/python3 tools/bench/torch_mlp.py speed [--batch 64,32] [--seconds 2] [--json]
    /usr/bin/python3 tools/bench/torch_mlp.py accuracy [--epochs 20] [--optimizer sgd|adam]
                                               [--seed 1] [--json]

speed:    samples/s of forward + backward + optimizer step, data preloaded as float tensors
          (warm-up, then the median of 3 timed runs of about --seconds each).
accuracy: trains on the full Fashion-MNIST training set (IDX .gz files, pixels / 255),
          shuffled each epoch with a seeded generator, and prints test accuracy after each epoch.

Use Debian's /usr/bin/python3 (python3-torch 1.13). torch links libblas.so.3: with Debian's
reference BLAS instead of OpenBLAS (libopenblas0-pthread) it is several times slower.
"""

import os

# One thread everywhere (OpenBLAS inside torch included), set before torch loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

# These defaults MUST match `starling train`'s defaults (node/cli/cmd_train.cpp,
# node/model/optimizer.hpp, node/model/trainer.hpp) so the two are compared like for like:
# batch 64, 20 epochs, seed 1, constant learning rate; SGD lr 0.05, momentum 0.9, weight decay 0;
# Adam lr 1e-3 (betas 0.9/0.999, eps 1e-8, weight decay 0). Change both together.
BATCH = 64
SGD_LR = 0.05
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 0.0
ADAM_LR = 1e-3
EPOCHS = 20
LAYERS = (784, 256, 128, 10)

SPEED_RUNS = 3
DATA_DIR = "/usr/share/datasets/fashion-mnist"


def make_model():
    # PyTorch's default nn.Linear initialisation (Kaiming-uniform weights, uniform biases).
    mods = []
    for i, (a, b) in enumerate(zip(LAYERS, LAYERS[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(LAYERS) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def make_optimizer(name, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=SGD_LR, momentum=SGD_MOMENTUM,
                               weight_decay=SGD_WEIGHT_DECAY)
    return torch.optim.Adam(params, lr=ADAM_LR)


def read_idx(path):
    """An IDX file (.gz) as a numpy array: magic 0x0000 <type 0x08=ubyte> <ndim>, big-endian dims."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes for dims {dims.tolist()}")
    return arr.reshape(dims)


def load_split(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(y.astype(np.int64))


def train_step(model, opt, loss_fn, x, y):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def speed(args):
    torch.manual_seed(args.seed)
    if os.path.exists(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz")):
        x_all, y_all = load_split(DATA_DIR, "train")
        source = "fashion-mnist"
    else:
        x_all, y_all = torch.rand(60000, LAYERS[0]), torch.randint(0, LAYERS[-1], (60000,))
        source = "synthetic"
    results = []
    for batch in args.batch:
        model = make_model()
        opt = make_optimizer(args.optimizer, model.parameters())
        loss_fn = torch.nn.CrossEntropyLoss()
        # Contiguous preloaded batches: no gather, no conversion inside the timed loop.
        xs = [x_all[i:i + batch] for i in range(0, len(x_all) - batch + 1, batch)]
        ys = [y_all[i:i + batch] for i in range(0, len(y_all) - batch + 1, batch)]

        def run(seconds):
            steps, t0 = 0, time.perf_counter()
            while True:
                for x, y in zip(xs, ys):
                    train_step(model, opt, loss_fn, x, y)
                    steps += 1
                    if steps % 16 == 0 and time.perf_counter() - t0 >= seconds:
                        return steps * batch / (time.perf_counter() - t0)

        run(min(1.0, args.seconds / 2))  # warm-up
        runs = [run(args.seconds) for _ in range(SPEED_RUNS)]
        results.append({"batch": batch, "samples_per_s": round(statistics.median(runs)),
                        "runs": [round(r) for r in runs]})

    if args.json:
        json.dump({"tool": "torch_mlp", "mode": "speed", "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "optimizer": args.optimizer,
                   "data": source, "results": results}, sys.stdout, indent=2)
        print()
        return
    print(f"torch_mlp speed: torch {torch.__version__}, {torch.get_num_threads()} thread, "
          f"{args.optimizer}, {source} data; samples/s (fwd+bwd+step), median of {SPEED_RUNS} "
          f"runs of {args.seconds:g} s")
    for r in results:
        print(f"  batch {r['batch']:>4}: {r['samples_per_s']:>8}   runs {r['runs']}")


def evaluate(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def accuracy(args):
    torch.manual_seed(args.seed)
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    model = make_model()
    opt = make_optimizer(args.optimizer, model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    batch = args.batch[0]
    # Cosine: the same per-step curve as `starling train --schedule cosine`, driven by the
    # fraction of all training samples seen so far.
    total_samples = args.epochs * len(x_train)
    base_lrs = [group["lr"] for group in opt.param_groups]
    seen = 0
    epochs = []
    if not args.json:
        print(f"torch_mlp accuracy: torch {torch.__version__}, {args.optimizer} "
              f"({'lr %g momentum %g' % (SGD_LR, SGD_MOMENTUM) if args.optimizer == 'sgd' else 'lr %g' % ADAM_LR}), "
              f"batch {batch}, seed {args.seed}, {len(x_train)} train / {len(x_test)} test")
    t_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        loss_sum, n = 0.0, 0
        for i in range(0, len(perm), batch):  # last partial batch included
            idx = perm[i:i + batch]
            if args.schedule == "cosine":
                factor = 0.5 * (1.0 + math.cos(math.pi * min(1.0, seen / total_samples)))
                for group, base in zip(opt.param_groups, base_lrs):
                    group["lr"] = base * factor
            loss = train_step(model, opt, loss_fn, x_train[idx], y_train[idx])
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            n += len(idx)
        model.eval()
        acc = evaluate(model, x_test, y_test)
        rec = {"epoch": epoch, "train_loss": round(loss_sum / n, 5), "test_accuracy": round(acc, 5),
               "seconds": round(time.perf_counter() - t_start, 2)}
        epochs.append(rec)
        if not args.json:
            print(f"  epoch {epoch:>3}: train loss {rec['train_loss']:.4f}  "
                  f"test accuracy {100 * acc:.2f}%  ({rec['seconds']:.1f} s)", flush=True)
    if args.json:
        json.dump({"tool": "torch_mlp", "mode": "accuracy", "torch": torch.__version__,
                   "optimizer": args.optimizer, "batch": batch, "seed": args.seed,
                   "sgd": {"lr": SGD_LR, "momentum": SGD_MOMENTUM, "weight_decay": SGD_WEIGHT_DECAY},
                   "adam": {"lr": ADAM_LR}, "epochs": epochs}, sys.stdout, indent=2)
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("speed", "accuracy"))
    ap.add_argument("--batch", default=None,
                    help=f"comma-separated batch sizes (speed: 64,32; accuracy: {BATCH})")
    ap.add_argument("--seconds", type=float, default=2.0, help="speed: length of each timed run")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help="accuracy: epochs")
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                    help="accuracy: learning-rate schedule")
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    default_batch = "64,32" if args.mode == "speed" else str(BATCH)
    args.batch = [int(b) for b in (args.batch or default_batch).split(",")]
    if any(b < 1 for b in args.batch) or args.seconds <= 0 or args.epochs < 1:
        ap.error("batch, seconds and epochs must be positive")
    torch.set_num_threads(1)
    speed(args) if args.mode == "speed" else accuracy(args)


if __name__ == "__main__":
    main()
