"""
What torch.compile saves for backward, per block and per token, at a config's widths: the tensors the
compiled forward hands to backward (torch.autograd.graph.saved_tensors_hooks), counted once per
storage, with the model's parameters left out. Runs the model with two depths (--layers=A,B) and
prints the difference over B - A: one block's saved tensors (shape, dtype, bytes per token) and their
sum, to compare with the cost tool's activation_terms, and the bf16 weight copies saved; the last
line is the sum as JSON.
Below 1, the budget is a fraction of the activations above the graph's inputs (the fp32 weights
among them): a shallow, small-batch model whose activations are smaller than its weights gets the
budget-1 choice whatever the budget; measure the budget at the real batch and depth.
python tests/gpu/saved_probe.py config/full_llama_1.36b.py [--activation_memory_budget=0.9] [--batch=1] [--layers=1,2] [--device=cuda]
"""
import collections
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from model import ModelConfig, Transformer  # noqa: E402


def saved_storages(cfg, n_layer, batch, device, budget):
    from torch._functorch import config as functorch_config
    functorch_config.activation_memory_budget = budget
    torch.manual_seed(0)
    model = Transformer(ModelConfig(**{**cfg, 'n_layer': n_layer})).to(device)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    weight_shapes = {tuple(p.shape) for p in model.parameters() if p.dim() == 2}
    T = cfg['block_size']
    idx = torch.randint(0, cfg['vocab_size'], (batch, T), device=device)
    storages = {}

    def pack(t):  # 0-dim tensors (a block's random-number seed and offset) are not activations
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and t.dim() > 0:
            storages.setdefault(ptr, (tuple(t.shape), t.dtype, t.untyped_storage().nbytes()))
        return t
    torch._dynamo.reset()
    compiled = torch.compile(model)
    with torch.autocast(device, torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, loss = compiled(idx, idx, return_logits=False)
    loss.backward()
    copies = {k: v for k, v in storages.items() if v[0] in weight_shapes}  # autocast's bf16 weight casts
    activations = {k: v for k, v in storages.items() if k not in copies}
    return activations, sum(nbytes for shape, dtype, nbytes in copies.values()), batch * T


def main(argv):
    config_file, opts = argv[0], dict(a.lstrip('-').split('=') for a in argv[1:])
    budget, batch = float(opts.get('activation_memory_budget', 1.0)), int(opts.get('batch', 1))
    device = opts.get('device', 'cuda' if torch.cuda.is_available() else 'cpu')
    names = {f.name for f in ModelConfig.__dataclass_fields__.values()}
    scope = {}
    exec(open(config_file).read(), scope)
    cfg = {k: v for k, v in scope.items() if k in names}
    a, b = (int(n) for n in opts.get('layers', '1,2').split(','))
    one, copies_1, tokens = saved_storages(cfg, a, batch, device, budget)
    two, copies_2, _ = saved_storages(cfg, b, batch, device, budget)
    count = lambda s: collections.Counter((shape, str(dtype), nbytes) for shape, dtype, nbytes in s.values())  # noqa: E731
    block = count(two) - count(one)
    print(f"{config_file} activation_memory_budget={budget} device={device} batch={batch} layers={a},{b}: "
          f"one block saves (the difference / {b - a})")
    for (shape, dtype, nbytes), n in sorted(block.items(), key=lambda kv: -kv[0][2]):
        print(f"  {n / (b - a):g} x {shape} {dtype}: {n * nbytes / tokens / (b - a):.0f} bytes/token")
    total = sum(n * nbytes for (shape, dtype, nbytes), n in block.items()) / (b - a)
    print(f"  total {total / tokens:.0f} bytes/token/block"
          f" (n_embd {cfg['n_embd']}: {total / tokens / cfg['n_embd']:.2f} x n_embd)")
    print(f"bf16 weight copies saved: {copies_2 / 2**20:.1f} MiB with {b} blocks, {copies_1 / 2**20:.1f} MiB with {a}")
    everything = sum(nbytes for shape, dtype, nbytes in two.values())
    print(f"all saved activations ({b} blocks, outside the blocks too): {everything / tokens:.0f} bytes/token")
    print(json.dumps({'bytes_per_token_per_block': total / tokens, 'weight_copies_saved': copies_2 > 0}))


if __name__ == '__main__':
    main(sys.argv[1:])
