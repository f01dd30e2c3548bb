"""Benchmark six implementations of causal multi-head attention, side by side.

Not a test. Runs, in one process and with the same sizes, the chapter 4 wrapper, the
chapter 5 MultiHeadAttention, a combined-QKV variant, an einsum variant,
F.scaled_dot_product_attention and nn.MultiheadAttention, forward and forward+backward,
and prints each one's time and its ratio to the wrapper measured in the same run.

    python benchmarks/attention.py --quick            # a few seconds on a CPU
    python benchmarks/attention.py                    # GPT-2-like sizes on CUDA if present
    python benchmarks/attention.py --device cpu --tokens 512 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.reference.multi_head_attention import VARIANTS  # noqa: E402

BASELINE = "wrapper (ch. 4)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--batch", type=int, help="default: 8 on CUDA, 4 on CPU")
    parser.add_argument("--tokens", type=int, help="default: 1024 on CUDA, 256 on CPU")
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement (default 20 "
                        "on CUDA, 5 on CPU); the median is reported")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's "
                        "choice; 1 gives steadier timings on a shared machine)")
    parser.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 3 repeats: checks that everything runs (seconds on a CPU)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    gpu = args.device == "cuda"
    if args.quick:
        args.batch, args.tokens = args.batch or 2, args.tokens or 64
        args.d_model, args.heads, args.repeats, args.warmup = 128, 8, args.repeats or 3, 1
    args.batch = args.batch or (8 if gpu else 4)
    args.tokens = args.tokens or (1024 if gpu else 256)
    args.repeats = args.repeats or (20 if gpu else 5)
    if args.d_model % args.heads:
        parser.error("--d-model must be divisible by --heads")
    return args


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(fn, device: str, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in seconds, with the device synchronised around each run."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict[str, tuple[float, float | None]]:
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.tokens, args.d_model, device=args.device, dtype=dtype)
    results = {}
    for name, cls in VARIANTS.items():
        module = cls(args.d_model, args.d_model, args.tokens, 0.0, args.heads)
        module = module.to(device=args.device, dtype=dtype)

        def forward(module=module):
            with torch.no_grad():
                module(x)

        def forward_backward(module=module):
            module.zero_grad(set_to_none=True)
            module(x).float().sum().backward()

        fwd = measure(forward, args.device, args.repeats, args.warmup)
        bwd = None if args.no_backward else measure(forward_backward, args.device,
                                                    args.repeats, args.warmup)
        results[name] = (fwd, bwd)
        del module
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return results


def report(args: argparse.Namespace, results: dict[str, tuple[float, float | None]]) -> str:
    device = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"cpu ({torch.get_num_threads()} threads)"
    lines = [f"torch {torch.__version__} on {device}; batch={args.batch}, tokens={args.tokens}, "
             f"d_model={args.d_model}, heads={args.heads}, dtype={args.dtype}, median of "
             f"{args.repeats} runs; ratio = time / time of '{BASELINE}' in this run",
             "",
             f"{'variant':32s} {'forward ms':>11s} {'ratio':>6s} {'fwd+bwd ms':>11s} {'ratio':>6s}"]
    base_fwd, base_bwd = results[BASELINE]
    for name, (fwd, bwd) in results.items():
        row = f"{name:32s} {1e3 * fwd:11.3f} {fwd / base_fwd:6.2f}"
        if bwd is not None:
            row += f" {1e3 * bwd:11.3f} {bwd / base_bwd:6.2f}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(report(args, run(args)))


if __name__ == "__main__":
    main()
