"""
Measure torchao float8 training against bf16 on one GPU at the 1.36B widths (fewer layers, so that it
compiles quickly): forward + backward time of a compiled model and the loss of both on one batch.
python perf/probes/fp8_probe.py [--layers=4] [--arch=llama]
"""
import sys
import time

import torch

sys.path.insert(0, '.')
from model import ModelConfig, Transformer  # noqa: E402

SHAPES = {'llama': dict(arch='llama', n_head=18, n_kv_head=18, n_embd=2304, d_ff=6144, vocab_size=32000,
                        residual_dtype='compute'),
          'gpt2': dict(arch='gpt2', n_head=19, n_embd=2432, d_ff=9728, vocab_size=50304)}


def run(arch, layers, recipe, lm_head, steps=6, warm=3, batch=8):
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layer=layers, block_size=2048, **SHAPES[arch])).cuda()
    if recipe:
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training
        convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name(recipe),
                                   module_filter_fn=lambda m, name: lm_head or name != 'lm_head')
    compiled = torch.compile(model)
    g = torch.Generator(device='cuda').manual_seed(1)
    x = torch.randint(0, 32000, (batch, 2049), device='cuda', generator=g)
    times = []
    for i in range(warm + steps):
        torch.cuda.synchronize()
        t0 = time.time()
        with torch.autocast('cuda', dtype=torch.bfloat16):
            _, loss = compiled(x[:, :-1], x[:, 1:], return_logits=False)
        loss.backward()
        torch.cuda.synchronize()
        times.append(time.time() - t0)
        model.zero_grad(set_to_none=True)
    ms = 1000 * sum(times[warm:]) / steps
    mem = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return ms, loss.item(), mem


if __name__ == '__main__':
    args = dict(a[2:].split('=') for a in sys.argv[1:])
    layers, arch = int(args.get('layers', 4)), args.get('arch', 'llama')
    import torchao
    print(f"torch {torch.__version__}, torchao {torchao.__version__}, {torch.cuda.get_device_name()}, {arch} x {layers} layers")
    base = None
    for recipe, lm_head in ((None, False), ('tensorwise', False), ('rowwise', False), ('tensorwise', True)):
        ms, loss, mem = run(arch, layers, recipe, lm_head)
        base = base or ms
        print(f"{recipe or 'bf16':>10} lm_head fp8={lm_head!s:5}: {ms:7.1f} ms fwd+bwd, {base / ms:.3f}x, loss {loss:.5f}, "
              f"peak {mem:.1f} GiB", flush=True)
