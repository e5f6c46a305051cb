"""Which networks beat copy-the-last-frame after N epochs on next-frame moving_digits.

Runs two ``zoobench`` sweeps in one command: the ConvLSTMs on sequences, and image models
on the last ``--stack`` frames stacked as channels (``layout: channels``). Each
leaderboard carries the ``persistence`` and ``mean_frame`` rows (no training), scored on
the same test frames; printed per row: mean test PSNR and SSIM, the gain over
persistence in dB, and whether it beats it. The two layouts score different frames
(sequences: every frame; stacked: the frames after the first ``stack``), so each table
has its own baselines.

    python tests/perf/next_frame.py [--size 32] [--frames 6] [--train 64] [--epochs 3]
        [--seeds 0] [--cpu 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEQUENCE_MODELS = ["lstm_unet", "lstm_shallow", "lstm_full", "lstm_next_frame"]
IMAGE_MODELS = ["testnet", "unet_shallow", "segnet_shallow"]
SPEC = """\
name: {name}
dataset: {{name: moving_digits, height: {size}, width: {size}, frames: {frames},
          train: {train}, val: {val}, test: {val}, target: next_frame{extra}}}
models: [{models}]
losses: [binary_crossentropy]
seeds: [{seeds}]
epochs: {epochs}
params: {{batch_size: 8, lr: 2.0e-3}}
resources: {{cpu: {cpu}, gpu: 0}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--stack", type=int, default=3)
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--val", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--cpu", type=float, default=2)
    args = parser.parse_args()

    import pandas as pd

    from bench.cli import main as zoobench

    layouts = {"sequence": (SEQUENCE_MODELS, ""),
               "channels": (IMAGE_MODELS, f", layout: channels, stack: {args.stack}")}
    with tempfile.TemporaryDirectory(prefix="zoobench-nf-") as scratch:
        results = Path(scratch) / "results"
        for layout, (models, extra) in layouts.items():
            spec = Path(scratch) / f"nf_{layout}.yaml"
            spec.write_text(SPEC.format(
                name=f"nf_{layout}", size=args.size, frames=args.frames, train=args.train,
                val=args.val, epochs=args.epochs, seeds=args.seeds, cpu=args.cpu,
                models=", ".join(models), extra=extra))
            start = time.perf_counter()
            code = zoobench(["sweep", str(spec), "--results", str(results)])
            print(f"# {layout}: sweep exit {code}, {time.perf_counter() - start:.0f} s")
        board = pd.read_parquet(results / "leaderboard.parquet")
    print(f"\n{args.epochs} epochs, {args.train} training sequences of {args.frames} frames, "
          f"{args.size}x{args.size}, seeds {args.seeds}; test PSNR/SSIM (mean over seeds)\n")
    print("| layout | model | test PSNR (dB) | test SSIM | gain vs persistence (dB) | beats |")
    print("|---|---|---|---|---|---|")
    for sweep, rows in board.groupby("sweep", sort=False):
        rows = rows.sort_values("test_psnr_mean", ascending=False)
        for row in rows.itertuples():
            beats = "-" if row.baseline else ("yes" if row.gain_vs_persistence > 0 else "no")
            print(f"| {sweep.removeprefix('nf_')} | {row.model} | {row.test_psnr_mean:.2f} | "
                  f"{row.test_ssim_mean:.3f} | {row.gain_vs_persistence:+.2f} | {beats} |")


if __name__ == "__main__":
    main()
