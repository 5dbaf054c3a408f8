"""
Environment check: packages and versions, GPUs, bf16, flash attention, and each GPU's bf16 peak.

    python test_imports.py

Exits non-zero only when a required package (requirements.txt, the core) is missing; everything
else is reported, an optional package with the extra of pyproject.toml that installs it. Without a
GPU it says so and exits 0: the small configs train on CPU. --help prints this and exits.
"""

import contextlib
import importlib
import importlib.metadata
import logging
import os
import re
import sys
import warnings

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
FALLBACK_REQUIRED = ('torch', 'numpy', 'tqdm')
OPTIONAL = (  # (package, what needs it, pyproject.toml's extra)
    ('tiktoken', 'GPT-2-style tokenizers', 'data'),
    ('transformers', 'LLaMA tokenizers, export_hf.py, bench.py --bench_baseline=hf', 'data'),
    ('tokenizers', "Llama-2's tokenizer: data/tokenizers/build.py, and transformers' fast tokenizers", 'data'),
    ('datasets', 'hub datasets: data/slimpajama_6b_*', 'data'),
    ('pyarrow', '.parquet inputs', 'data'),
    ('zstandard', '.jsonl.zst inputs', 'data'),
    ('matplotlib', 'plot_runs.py', 'plot'),
    ('lm_eval', 'eval_downstream.py', 'eval'),
    ('torchao', 'fp8=True', 'fp8'),
    ('wandb', 'run logging to Weights & Biases', 'track'),
    ('tensorboard', 'TensorBoard logging', 'track'),
)


def required_packages():
    """[(distribution, minimum version or None)] from requirements.txt, or the built-in list."""
    path = os.path.join(REPO_DIR, 'requirements.txt')
    if not os.path.isfile(path):
        return [(name, None) for name in FALLBACK_REQUIRED]
    packages = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            match = re.match(r'([A-Za-z0-9_.\-]+)\s*(?:>=\s*([\w.]+))?', line)
            if match:
                packages.append((match.group(1), match.group(2)))
    return packages


def older_than(version, minimum):
    try:
        from packaging.version import Version
        return Version(version) < Version(minimum)
    except Exception:  # packaging missing or an unusual version string: do not guess
        return False


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def kept_import_messages():
    """The warnings an import logs or warns, kept in a list instead of printed: torchao logs a
    'Failed to load' line for each compiled extension that does not load, and torch a deprecation
    note for each enum torchao registers; import_note says what they mean, in one line."""
    kept = _Kept()
    loggers = [logging.getLogger(), logging.getLogger('torch')]  # torch's own loggers do not reach the root's
    handlers = [logger.handlers for logger in loggers]
    for logger in loggers:
        logger.handlers = [kept]
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield kept.messages
    finally:
        for logger, saved in zip(loggers, handlers):
            logger.handlers = saved
        kept.messages += [str(w.message) for w in caught]


def import_note(name, messages):
    """One line's note on what importing a package logged, or ''."""
    if not messages:
        return ''
    loads = [re.match(r'Failed to load (\S+?):', m) for m in messages]
    failed = [os.path.basename(m.group(1)).split('.')[0] for m in loads if m]
    torch = sys.modules.get('torch')
    gpu = torch is not None and torch.cuda.is_available()
    notes = []
    if failed:
        notes.append(f"{len(failed)} compiled extension{'s' if len(failed) > 1 else ''} ({', '.join(failed)}) not "
                     f"loaded" + ("" if gpu else ": CUDA kernels, and no CUDA GPU here")
                     + ("; fp8=True does not use them" if name == 'torchao' else ""))
    others = len(messages) - len(failed)
    if others:
        notes.append(f"{others} more import warning{'s' if others > 1 else ''} not shown")
    return f"  ({'; '.join(notes)})"


def check_package(name, minimum=None):
    """(installed, line to print)."""
    module = name.replace('-', '_')
    try:
        with kept_import_messages() as messages:
            importlib.import_module(module)
    except ImportError as e:
        return False, f"  {name:<14} MISSING ({e})"
    except Exception as e:  # installed but broken (e.g. a binary mismatch): report, do not crash
        return False, f"  {name:<14} BROKEN ({type(e).__name__}: {e})"
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules[module], '__version__', '?')
    note = f"  (older than requirements.txt's >= {minimum}: upgrade it)" if minimum and older_than(version, minimum) else ''
    return True, f"  {name:<14} {version}{note}{import_note(name, messages)}"


def flash_attention_status(device):
    """'OK' if a bf16 scaled_dot_product_attention runs on the flash backend alone, else why not."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q, k, v = (torch.randn(2, 8, 256, 128, device=device, dtype=torch.bfloat16) for _ in range(3))
    try:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize(device)
    except RuntimeError as e:
        return f"not available ({str(e).strip().splitlines()[0][:120]}); the other SDPA backends are used"
    reference = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    error = (out.float() - reference).abs().max().item()
    return "OK" if error < 5e-2 else f"runs but differs from the fp32 math by {error:.3g}"


def report_gpus():
    import torch
    from gpu_specs import peak_tflops
    print(f"\nCUDA: torch built with CUDA {torch.version.cuda or 'none'}")
    if not torch.cuda.is_available():
        print("  no CUDA GPU found. CPU-only training works for the small configs "
              "(python train.py config/quick_llama.py); the 1.36B configs need GPUs.")
        return
    count = torch.cuda.device_count()
    print(f"  {count} GPU{'s' if count != 1 else ''}, cuDNN {torch.backends.cudnn.version()}")
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        peak = peak_tflops(props.name)
        peak_text = f"{peak:g} TFLOP/s dense bf16" if peak else "unknown bf16 peak (MFU not reported unless the config gives it)"
        print(f"  cuda:{i}  {props.name}, {props.total_memory / 2**30:.1f} GiB, "
              f"compute capability {props.major}.{props.minor}, {peak_text}")
    print(f"  bf16: {'supported' if torch.cuda.is_bf16_supported() else 'NOT supported (use dtype=float16)'}")
    print(f"  flash attention (SDPA, bf16): {flash_attention_status(torch.device('cuda', 0))}")


def main():
    print(f"Python {sys.version.split()[0]} on {sys.platform}")
    print("\nrequired packages (requirements.txt):")
    missing = []
    for name, minimum in required_packages():
        ok, line = check_package(name, minimum)
        print(line)
        if not ok:
            missing.append(name)
    print('\noptional packages (pip install ".[EXTRA]"; ".[all]" for every one):')
    for name, use, extra in OPTIONAL:
        ok, line = check_package(name)
        print(line if ok else f"  {name:<14} not installed ({use}: pip install \".[{extra}]\")")
    if 'torch' not in missing:
        report_gpus()
    if missing:
        print(f"\nmissing: {', '.join(missing)}. Install with: pip install -r requirements.txt", file=sys.stderr)
        return 1
    print("\nall required packages are installed")
    return 0


if __name__ == '__main__':
    if set(sys.argv[1:]) & {'--help', '-h'}:
        print(__doc__.strip())
        sys.exit(0)
    sys.exit(main())
