"""
Causal attention kernels at the 1.36B shapes, forward + backward, on one GPU: PyTorch's SDPA with each
backend it offers (cuDNN, FlashAttention-2, memory-efficient) and, where the flash-attn-4 package is
installed, FlashAttention-4's CuTe kernels (flash_attn.cute). Prints one line per kernel: time,
TFLOP/s of the causal work actually computed, and the largest error of the output and of dq against
float32 math on the same inputs.
python perf/probes/attention_probe.py [--batch=8] [--seq=2048] [--heads=18] [--head_dim=128]
"""
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def sdpa(backend):
    def attend(q, k, v):  # (B, T, H, D) in and out, as the model's qkv matmul lays them out
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  is_causal=True).transpose(1, 2)
    return attend


def fa4():
    from flash_attn.cute import flash_attn_func

    def attend(q, k, v):
        out = flash_attn_func(q, k, v, causal=True)
        return out[0] if isinstance(out, tuple) else out
    return attend


def measure(attend, q, k, v, dy, steps=20, warm=5):
    for i in range(warm + steps):
        if i == warm:
            torch.cuda.synchronize()
            t0 = time.time()
        y = attend(q, k, v)
        y.backward(dy)
    torch.cuda.synchronize()
    return (time.time() - t0) / steps


def main(argv):
    args = dict(batch=8, seq=2048, heads=18, head_dim=128)
    for a in argv:
        key, value = a.lstrip('-').split('=')
        args[key] = int(value)
    B, T, H, D = args['batch'], args['seq'], args['heads'], args['head_dim']
    g = torch.Generator(device='cuda').manual_seed(0)
    q, k, v, dy = (torch.randn(B, T, H, D, device='cuda', dtype=torch.bfloat16, generator=g) for _ in range(4))
    # reference on one sequence in float32 math
    ref_in = [t[:1].float().requires_grad_() for t in (q, k, v)]
    with sdpa_kernel(SDPBackend.MATH):
        ref = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in ref_in), is_causal=True).transpose(1, 2)
    ref.backward(dy[:1].float())
    flops = 4 * B * H * T * T * D / 2 * 3.5  # causal: half the score matrix; backward ~2.5x the forward
    kernels = {'sdpa cudnn': lambda: sdpa(SDPBackend.CUDNN_ATTENTION),
               'sdpa flash (FA2)': lambda: sdpa(SDPBackend.FLASH_ATTENTION),
               'sdpa efficient': lambda: sdpa(SDPBackend.EFFICIENT_ATTENTION),
               'flash-attn-4 (cute)': fa4}
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | B={B} T={T} H={H} D={D}, causal, bf16")
    for name, make in kernels.items():
        try:
            attend = make()
            leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
            seconds = measure(attend, *leaves, dy)
            one = [t[:1].detach().clone().requires_grad_() for t in (q, k, v)]
            y = attend(*one)
            y.backward(dy[:1])
            err_y = (y.float() - ref).abs().max().item()
            err_dq = (one[0].grad.float() - ref_in[0].grad).abs().max().item()
            print(f"{name:22s} {seconds * 1000:7.2f} ms  {flops / seconds / 1e12:6.0f} TFLOP/s  "
                  f"max err out {err_y:.2e}  dq {err_dq:.2e}")
        except Exception as e:  # a kernel this GPU or install lacks: say so, go on with the others
            print(f"{name:22s} unavailable: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")


if __name__ == '__main__':
    main(sys.argv[1:])
