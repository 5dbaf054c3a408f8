"""
Fused kernels at the LLaMA 1.36B shapes (one micro-batch's tokens) on one GPU against what the model runs now,
forward + backward under bf16 autocast: time, peak memory added, largest error against float32 math.
1. residual add + RMSNorm: torch.compile against Liger-Kernel's fused add+RMSNorm, and its RMSNorm after the add;
2. SwiGLU silu(gate) * up: torch.compile against Liger's SiLU-mul;
3. output layer + cross-entropy: torch.compile (logits materialised) against Liger's fused linear cross-entropy;
4. one micro-step's weight-gradient accumulation over all block linears: bf16 matmul, cast, add into the fp32
   grad (autocast + AccumulateGrad now) against one addmm with out_dtype=float32, and the matmul alone.
One line per measurement, then a JSON line (key kernel_probe). Without liger-kernel its lines say skipped. Liger's
kernels come from their modules (liger_kernel.ops.<op>, Triton), not a backend liger_kernel.ops may swap in.
python perf/probes/kernel_probe.py [--tokens=16384] [--d=2304] [--d_ff=6144] [--vocab=32000] [--layers=18]
"""
import importlib
import importlib.metadata
import importlib.util
import json
import sys
import time

import torch
import torch.nn.functional as F

EPS = 1e-5        # the LLaMA configs' norm_eps
MICRO_STEPS = 16  # gradient_accumulation_steps of config/full_llama_1.36b.py
BF16 = torch.bfloat16
LIGER = importlib.util.find_spec('liger_kernel') is not None


def liger(module, name):
    return getattr(importlib.import_module(f'liger_kernel.ops.{module}'), name)


def randn(*shape, dtype=BF16, grad=False):
    return torch.randn(*shape, device='cuda', dtype=dtype).requires_grad_(grad)


def timed(step, steps=20, warm=5):
    for i in range(warm + steps):
        if i == warm:
            torch.cuda.synchronize()
            t0 = time.time()
        step()
    torch.cuda.synchronize()
    return (time.time() - t0) / steps * 1000  # ms


def err(a, b):
    return (a.float() - b.float()).abs().max().item()


def first_line(e):
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"


def bench(name, fn, leaves, douts, names, refs):
    """Time fn(*leaves) (a tuple of outputs) + backward with douts, its peak memory above what is allocated before
    (inputs, references), and the largest error of what `names` labels (outputs, then the leaves' gradients)."""
    for t in leaves:
        t.grad = None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()

    def step():
        for t in leaves:
            t.grad = None
        with torch.autocast('cuda', BF16):
            outs = fn(*leaves)
        torch.autograd.backward(outs, douts)
        return outs
    ms = timed(step)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**30
    got = dict(zip(names, [*step(), *(t.grad for t in leaves)]))
    errs = {k: err(got[k], ref) for k, ref in refs.items()}
    print(f"{name}: {ms:.3f} ms fwd+bwd, max |err| " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
          + f", peak {peak:.2f} GiB")
    return dict(ms=round(ms, 4), peak_gib=round(peak, 3), **{f'err_{k}': float(f'{v:.3e}') for k, v in errs.items()})


def section(title, fn, ligers, leaves, douts, names, keep):
    """fn (the model's math) compiled, and Liger's kernels (ligers: {name: make}, make() returning the function),
    each against fn in float32 math (eager, computed once) on the same inputs. A Liger kernel that is missing or
    fails prints one line and the others go on."""
    print(f"-- {title}")
    leaves32 = [t.detach().float().requires_grad_() for t in leaves]
    outs = fn(*leaves32)
    torch.autograd.backward(outs, douts and [t.float() for t in douts])
    refs = {k: v.detach() for k, v in zip(names, [*outs, *(t.grad for t in leaves32)]) if k in keep}
    del leaves32, outs
    results = {}
    for name, make in {'compiled': lambda: torch.compile(fn), **ligers}.items():
        try:
            results[name] = bench(name, make(), leaves, douts, names, refs)
        except ImportError as e:
            print(f"{name}: liger-kernel not installed: skipped" if not LIGER else f"{name}: {first_line(e)}")
        except Exception as e:
            print(f"{name}: failed: {first_line(e)}")
    return results


def add_rmsnorm(tokens, d):
    def model(x, y, w):  # Block's residual add, then model.RMSNorm
        s = x + y
        return s, F.rms_norm(s.float(), (d,), w.float(), EPS).type_as(s)

    # casting_mode 'gemma' computes in fp32 and casts back, as model.RMSNorm; in_place=False: in place, the
    # backward writes dx over the incoming gradient, here a fixed tensor (in the model it saves an allocation)
    def liger_norm(fused):
        if fused:  # apply(X, R, W, eps, offset, casting_mode, in_place) -> (rmsnorm(X + R), X + R)
            f = liger('fused_add_rms_norm', 'LigerFusedAddRMSNormFunction')
            return lambda x, y, w: f.apply(x, y, w, EPS, 0.0, 'gemma', False)[::-1]
        f = liger('rms_norm', 'LigerRMSNormFunction')  # apply(X, W, eps, offset, casting_mode, in_place)
        return lambda x, y, w: ((s := x + y), f.apply(s, w, EPS, 0.0, 'gemma', False))
    w = (1 + 0.1 * randn(d, dtype=torch.float32)).requires_grad_()  # fp32, as the model's parameter
    # y (the attention or MLP output) takes no gradient: dy = dx, and two leaves given one tensor would clone it
    return section('residual add + RMSNorm', model, {'liger fused add+rmsnorm': lambda: liger_norm(True),
                                                     'liger rmsnorm after add': lambda: liger_norm(False)},
                   [randn(tokens, d, grad=True), randn(tokens, d), w], (randn(tokens, d), randn(tokens, d)),
                   ('s', 'out', 'dx', 'dy', 'dw'), ('out', 'dx'))


def swiglu(tokens, d_ff):
    def model(h):  # model.MLP's gated branch on fc's output
        gate, up = h.chunk(2, -1)
        return (F.silu(gate) * up,)

    def liger_silu_mul():  # apply(a, b) -> silu(a) * b
        f = liger('swiglu', 'LigerSiLUMulFunction')
        # the kernel walks a, b and c with one row stride, so it takes contiguous inputs (its forward calls
        # .contiguous() itself): the chunks of fc's output are not, in the model too, so the copies are timed
        return lambda h: (f.apply(*(c.contiguous() for c in h.chunk(2, -1))),)
    return section('SwiGLU silu(gate) * up', model, {'liger silu_mul': liger_silu_mul},
                   [randn(tokens, 2 * d_ff, grad=True)], (randn(tokens, d_ff),), ('out', 'dh'), ('out', 'dh'))


def linear_ce(tokens, d, vocab):
    t = torch.randint(0, vocab, (tokens,), device='cuda')

    def model(x, w):  # the lm_head, then Transformer.forward's loss
        return (F.cross_entropy(F.linear(x, w).float(), t, ignore_index=-1),)

    def liger_flce(bf16_weight):
        f = liger('fused_linear_cross_entropy', 'LigerFusedLinearCrossEntropyFunction')
        # apply(input, weight, target, bias, ce_weight, ignore_index, lse_square_scale, label_smoothing, reduction,
        # softcap, return_z_loss, accum_dtype) -> (loss, z_loss, token_accuracy, predicted_tokens) in 0.8.5.
        # The fp32 weight: autocast casts it for the chunks' matmuls and Liger accumulates dW in fp32 as is.
        # bf16 weight (as FSDP2's bf16 parameters): cast outside; dW accumulated in fp32 (accum_dtype), returned in
        # bf16 to the cast
        def run(x, w):
            out = f.apply(x, w.to(BF16), t, None, None, -1, 0.0, 0.0, 'mean', None, False, torch.float32) \
                if bf16_weight else f.apply(x, w, t, None, None, -1)
            return (out[0] if isinstance(out, tuple) else out,)
        return run
    w = (0.02 * randn(vocab, d, dtype=torch.float32)).requires_grad_()  # fp32 parameter
    return section('output layer + cross-entropy', model, {
        'liger fused linear CE': lambda: liger_flce(False), 'liger fused linear CE, bf16 weight':
        lambda: liger_flce(True)}, [randn(tokens, d, grad=True), w], None, ('loss', 'dx', 'dW'), ('loss', 'dx', 'dW'))


def addmm_form():
    """How this torch adds a bf16 matmul into an fp32 tensor with one addmm (checked on a small case), or None."""
    forms = {'out=grad32': lambda a, g, x: torch.addmm(a, g.t(), x, beta=1.0, out_dtype=torch.float32, out=a),
             'grad32.copy_': lambda a, g, x: a.copy_(torch.addmm(a, g.t(), x, beta=1.0, out_dtype=torch.float32))}
    a, g, x = randn(256, 128, dtype=torch.float32), randn(512, 256), randn(512, 128)
    want = a + g.float().t() @ x.float()
    for name, form in forms.items():
        try:
            if err(form(a.clone(), g, x), want) < 1e-3 * want.abs().max().item():
                return name, form
            print(f"addmm out_dtype, {name}: wrong result")
        except (TypeError, RuntimeError) as e:
            print(f"addmm out_dtype, {name}: {first_line(e)}")
    return None, None


def weight_grads(tokens, d, d_ff, layers):
    print(f"-- weight-gradient accumulation, one micro-step, all block linears of {layers} layers")
    shapes = {'qkv': (3 * d, d), 'attn proj': (d, d), 'fc': (2 * d_ff, d), 'mlp proj': (d, d_ff)}  # (out, in)
    acts = [(randn(tokens, n_out), randn(tokens, n_in)) for n_out, n_in in shapes.values()]  # g, x
    weights = [(randn(*s, dtype=torch.float32), torch.zeros(*s, device='cuda'), *a)  # w32, grad32, g, x
               for _ in range(layers) for s, a in zip(shapes.values(), acts)]

    def unfused(grad32, g, x):  # the bf16 weight gradient, autocast's cast backward to fp32, AccumulateGrad
        grad32 += (g.t() @ x).float()
    name, fused = addmm_form()
    # current: autocast casts the weights to bf16 once per micro-step
    ms = {'current': timed(lambda: [(w.to(BF16), unfused(gw, g, x)) for w, gw, g, x in weights])}
    if fused:
        cast = timed(lambda: [w.to(BF16) for w, *_ in weights])  # fused: once per optimizer step
        ms['fused'] = timed(lambda: [fused(gw, g, x) for _, gw, g, x in weights]) + cast / MICRO_STEPS
        print(f"fused: torch.addmm(grad32, g.t(), x, out_dtype=torch.float32) with {name}; the weights' cast "
              f"({cast:.3f} ms) counted 1/{MICRO_STEPS}")
    else:
        print("fused: skipped, this torch has no addmm with out_dtype=float32 into an fp32 tensor")
    ms['mm_only'] = timed(lambda: [g.t() @ x for _, _, g, x in weights])
    rel = {}
    for g, x in acts:  # 16 accumulations of one gradient against 16 x its fp32 product (an exact scaling)
        ref = MICRO_STEPS * (g.float().t() @ x.float())
        for variant, accumulate in (('current', unfused), ('fused', fused)):
            if accumulate:
                grad = torch.zeros_like(ref)
                for _ in range(MICRO_STEPS):
                    accumulate(grad, g, x)
                rel[variant] = max(rel.get(variant, 0.0), err(grad, ref) / ref.abs().max().item())
    for variant, t in ms.items():
        print(f"{variant}: {t:.3f} ms per micro-step" + (
            f", max |err| / max |ref| after {MICRO_STEPS} accumulations {rel[variant]:.2e}" if variant in rel else ''))
    result = {**{f'{k}_ms': round(v, 4) for k, v in ms.items()},
              **{f'{k}_rel_err': float(f'{v:.3e}') for k, v in rel.items()}, 'addmm_form': name}
    if fused:
        result['saving_ms_per_optimizer_step'] = round((ms['current'] - ms['fused']) * MICRO_STEPS, 3)
        print(f"saving: {result['saving_ms_per_optimizer_step']:.3f} ms per optimizer step ({MICRO_STEPS} micro-steps)")
    return result


def main(argv):
    args = dict(tokens=16384, d=2304, d_ff=6144, vocab=32000, layers=18)
    for a in argv:
        key, value = a.lstrip('-').split('=')
        args[key] = int(value)
    T, d, d_ff, vocab, layers = (args[k] for k in ('tokens', 'd', 'd_ff', 'vocab', 'layers'))
    try:
        version = importlib.metadata.version('liger-kernel')
    except importlib.metadata.PackageNotFoundError:
        version = None
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | liger-kernel {version} | {args}")
    torch.manual_seed(0)
    results = {'device': torch.cuda.get_device_name(), 'torch': torch.__version__, 'liger_kernel': version, **args}
    for key, run in (('add_rmsnorm', lambda: add_rmsnorm(T, d)), ('swiglu', lambda: swiglu(T, d_ff)),
                     ('linear_ce', lambda: linear_ce(T, d, vocab)),
                     ('weight_grad', lambda: weight_grads(T, d, d_ff, layers))):
        results[key] = run()
        torch.cuda.empty_cache()
    print(json.dumps({'kernel_probe': results}))


if __name__ == '__main__':
    main(sys.argv[1:])
