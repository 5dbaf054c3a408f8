# The scaling ladder (flops_parameter_counting/README.md, "Fitting a ladder"; reference/scaling/): each
# architecture with its own real tokenizer on the English mix, at 4 sizes x 3 token budgets, one seed,
# for scaling_fit.py to fit bits per byte against N (non-embedding parameters) and D (bytes of text).
#
#     python data/english_mix_llama/prepare.py && python data/english_mix_gpt2/prepare.py
#     python sweep.py config/sweeps/scaling.py --parallel=8
#     python flops_parameter_counting/scaling_fit.py out-scaling/*-p*-s1 --predict N=...,D=...
#
# - Sizes: layers x width 2x128, 3x192, 4x256, 5x320 (heads of 64), 0.39M to 6.1M non-embedding
#   parameters (12 L d^2: 15.6x); GPT-2's MLP 4d, LLaMA's SwiGLU 8d/3 rounded to a multiple of 32 (within
#   3% of GELU's FLOPs). Everything else is config/english_gpt2.py's and config/english_llama.py's recipe.
# - Token budgets: a quarter, a half and one whole pass over the training split (the data's limit: no
#   text is read twice), each its own run with warmup 10% and cosine to a tenth of the peak. Tokens per
#   non-embedding parameter run from 1.2 (5x320, a quarter pass) to 84 (2x128, one pass): the small sizes
#   see more than Chinchilla's 20, the large fewer, and each size three budgets a factor 2 apart, so N and
#   D vary apart and the fit can tell their terms apart (Hoffmann et al.'s approach 3 on a grid of N and D).
# - Learning rate: each size at lr(N) = 2e-3 x k(N) / k(N_ref), k(N) = 0.003239 - 0.0001395 ln N (Kaplan et
#   al. 2020, eq. D.1: the rate their sizes trained best at, N non-embedding), N = 12 L d^2, calibrated at
#   N_ref = 12 x 6 x 384^2 (the reference's 6x384, whose sweep put both architectures' best at 2e-3):
#   2.94e-3, 2.59e-3, 2.35e-3, 2.16e-3 from the smallest. The rule is checked at the smallest and the
#   largest size, half a pass, at half and twice its rate (the '-lrx' groups: not fitted).
# 2 architectures x (4 sizes x 3 budgets + 4 rate checks) = 32 runs; the held-out size is
# config/sweeps/scaling_heldout.py.
import math

out_dir = 'out-scaling'
_PASS = {'gpt2': ('config/english_gpt2.py', 1007), 'llama': ('config/english_llama.py', 884)}  # iterations a pass
_SIZES = [(2, 128), (3, 192), (4, 256), (5, 320)]
_FRACTIONS = [0.25, 0.5, 1.0]


def _rate(n_layer, n_embd):
    k = lambda n: 0.003239 - 0.0001395 * math.log(n)
    return float(f"{2e-3 * k(12 * n_layer * n_embd ** 2) / k(12 * 6 * 384 ** 2):.3g}")


def _entry(arch, n_layer, n_embd, fraction, rate_factor=1.0):
    config, one_pass = _PASS[arch]
    iters = math.ceil(one_pass * fraction)
    lr = float(f"{_rate(n_layer, n_embd) * rate_factor:.3g}")
    d_ff = 4 * n_embd if arch == 'gpt2' else 32 * round(8 * n_embd / 3 / 32)
    return (config, {'n_layer': n_layer, 'n_head': n_embd // 64, 'n_kv_head': n_embd // 64, 'n_embd': n_embd,
                     'd_ff': d_ff, 'max_iters': iters, 'warmup_iters': round(iters / 10),
                     'learning_rate': lr, 'min_lr': float(f"{lr / 10:.3g}")})


configs = {}
for _arch in _PASS:
    for _layers, _width in _SIZES:
        for _fraction in _FRACTIONS:
            configs[f"{_arch}-{_layers}x{_width}-p{_fraction:g}"] = _entry(_arch, _layers, _width, _fraction)
    for _layers, _width in (_SIZES[0], _SIZES[-1]):
        for _factor in (0.5, 2.0):
            configs[f"{_arch}-{_layers}x{_width}-p0.5-lrx{_factor:g}"] = _entry(_arch, _layers, _width, 0.5, _factor)
grid = {'seed': [1]}
tuned = ''
eval_bpb = False
metric = 'val_bpb'
