"""model.py: production parameter counts and FLOPs, Hugging Face equivalence, causality, init,
optimizer groups, generation, presets and shape errors. CPU, fp32, tiny models."""

import math
import os

import pytest
import torch

from model import MODEL_FIELDS, ModelConfig, Transformer
from hf_format import to_hf

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRODUCTION = {  # config file: (parameters, training FLOPs per token at 2048, decayed, not decayed)
    'full_llama_1.36b.py': (1_294_159_104, 8_341_802_496, 1_220_345_856, 73_813_248),
    'full_gpt2_1.36b.py': (1_404_968_832, 9_475_767_552, 1_399_898_112, 5_070_720),
}


def production_config(name):
    namespace = {}
    with open(os.path.join(REPO_DIR, 'config', name)) as f:
        exec(f.read(), namespace)
    return ModelConfig(**{k: namespace[k] for k in MODEL_FIELDS if k in namespace})


def tiny_model(arch='llama', seed=0, noise=0.1, **overrides):
    """A small model whose every parameter (norms and biases included) is moved off its init, so
    that a weight mapped to the wrong place, or left at its default, shows in the logits."""
    args = dict(arch=arch, n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=96)
    args.update(overrides)
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(**args))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    return model.eval()


# ----------------------------------------------------------------------------- production shapes

@pytest.mark.parametrize('name', sorted(PRODUCTION))
def test_production_parameter_count_and_flops(name):
    params, flops, decayed, not_decayed = PRODUCTION[name]
    config = production_config(name)
    with torch.device('meta'):
        model = Transformer(config)
    assert model.num_params() == params
    assert model.flops_per_token(2048) == flops
    decay, no_decay = model.param_groups(weight_decay=0.1)
    assert sum(p.numel() for p in decay['params']) == decayed  # config/PARAMETER_FORMULAS.md's table
    assert sum(p.numel() for p in no_decay['params']) == not_decayed
    assert config.block_size == 2048 and config.head_dim == 128


SWEEP = {'sweep_llama_350m.py': (373_867_520, 308_330_496), 'sweep_gpt2_350m.py': (355_648_512, 302_039_040)}


@pytest.mark.parametrize('name', sorted(SWEEP))
def test_sweep_configs_are_what_their_comments_say(name):
    """The ~350M sweep configs: the parameter counts their comments give, the same depth and width
    for both architectures, the 1.36B configs' recipe at 4,000 iterations."""
    params, in_blocks = SWEEP[name]
    config = production_config(name)
    with torch.device('meta'):
        model = Transformer(config)
    assert model.num_params() == params and sum(p.numel() for p in model.blocks.parameters()) == in_blocks
    with open(os.path.join(REPO_DIR, 'config', name)) as f:
        text = f.read()
    assert f"{params:,} parameters, {in_blocks:,} of them" in ' '.join(text.replace('#', ' ').split())
    assert (config.n_layer, config.n_embd, config.n_head, config.block_size) == (24, 1024, 16, 2048)


def test_production_formulas_term_by_term():
    """The worked sums of config/PARAMETER_FORMULAS.md."""
    d, V, L, d_ff = 2304, 32000, 18, 6144  # LLaMA: untied embeddings, SwiGLU, RMSNorm
    assert 2 * V * d + L * (4 * d * d + 3 * d * d_ff + 2 * d) + d == PRODUCTION['full_llama_1.36b.py'][0]
    d, V, T, L, d_ff = 2432, 50304, 2048, 18, 9728  # GPT-2: tied embeddings, learned positions
    assert V * d + T * d + L * (4 * d * d + 2 * d * d_ff + 2 * d) + d == PRODUCTION['full_gpt2_1.36b.py'][0]


# ----------------------------------------------------------------------------- Hugging Face equivalence

EQUIVALENCE_CASES = [
    dict(arch=arch, n_kv_head=kv, bias=bias) for arch in ('llama', 'gpt2') for kv in (4, 2) for bias in (False, True)
] + [dict(arch='llama', n_kv_head=1, tie_embeddings=True), dict(arch='gpt2', tie_embeddings=False),
     dict(arch='llama', rope_theta=500000.0, norm_eps=1e-6, d_ff=96)]


@pytest.mark.parametrize('case', EQUIVALENCE_CASES, ids=lambda c: '-'.join(f'{k}={v}' for k, v in c.items()))
def test_hf_logits_match(case):
    model = tiny_model(**case)
    hf_model = to_hf(model)
    expected_class = 'LlamaForCausalLM' if case['arch'] == 'llama' else 'GPT2LMHeadModel'
    assert type(hf_model).__name__ == expected_class
    assert sum(p.numel() for p in hf_model.parameters()) >= model.num_params()
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.block_size), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, _ = model(idx)
        theirs = hf_model(idx).logits
    assert ours.dtype == theirs.dtype == torch.float32
    assert (ours - theirs).abs().max().item() < 1e-4
    assert ours.abs().max().item() > 0.1  # not trivially equal


@pytest.mark.parametrize('change', [dict(arch='llama', norm='layernorm'), dict(arch='gpt2', position='rope'),
                                    dict(arch='gpt2', mlp='swiglu'), dict(arch='llama', norm_placement='post')])
def test_non_standard_mixes_are_refused(change):
    model = tiny_model(**change)
    with pytest.raises(ValueError, match='cannot be exported|not a standard architecture'):
        to_hf(model)


# ----------------------------------------------------------------------------- behaviour

@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
@pytest.mark.parametrize('norm_placement', ['pre', 'post'])
def test_causal(arch, norm_placement):
    model = tiny_model(arch, norm_placement=norm_placement, n_kv_head=2)
    T = model.config.block_size
    idx = torch.randint(0, model.config.vocab_size, (1, T), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        base, _ = model(idx)
        for t in (0, 5, T - 1):
            changed = idx.clone()
            changed[0, t] = (changed[0, t] + 1) % model.config.vocab_size
            logits, _ = model(changed)
            assert torch.allclose(logits[:, :t], base[:, :t], atol=1e-6, rtol=0), f"token {t} changed earlier logits"
            assert (logits[:, t] - base[:, t]).abs().max() > 1e-4, f"token {t} did not change its own logits"


@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_init(arch):
    n_layer = 8
    torch.manual_seed(0)
    model = Transformer(ModelConfig(arch=arch, n_layer=n_layer, n_head=4, n_embd=256, block_size=64,
                                    vocab_size=512, bias=True))
    residual_std = 0.02 / math.sqrt(2 * n_layer)
    for name, p in model.named_parameters():
        if p.dim() == 1:  # norm weights are ones; norm and linear biases zeros
            assert torch.all(p == (1.0 if 'norm' in name and name.endswith('weight') else 0.0)), name
        else:
            residual = name.endswith(('attn.proj.weight', 'mlp.proj.weight'))  # the two residual projections
            expected = residual_std if residual else 0.02
            assert abs(p.std().item() - expected) < 0.05 * expected, (name, p.std().item(), expected)
            assert abs(p.mean().item()) < 0.1 * expected, name


@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_param_groups(arch):
    model = tiny_model(arch, bias=True)
    decay, no_decay = model.param_groups(weight_decay=0.1)
    assert decay['weight_decay'] == 0.1 and no_decay['weight_decay'] == 0.0
    ids = [id(p) for group in (decay, no_decay) for p in group['params']]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # each parameter in exactly one group
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay['params']}
    decay_names = {names[id(p)] for p in decay['params']}
    assert all(p.dim() == 2 for p in decay['params'])
    assert all(n.endswith('bias') or 'norm' in n or n in ('wte.weight', 'wpe.weight') for n in no_decay_names)
    assert {n for n in names.values() if n.endswith('bias') or 'norm' in n} <= no_decay_names
    if model.config.tie_embeddings:  # the shared matrix is the output layer: decayed, once
        assert 'wte.weight' in decay_names
    else:
        assert 'wte.weight' in no_decay_names and 'lm_head.weight' in decay_names


@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_generate(arch):
    model = tiny_model(arch, block_size=16)
    prompt = torch.randint(0, model.config.vocab_size, (3, 5), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    out = model.generate(prompt, max_new_tokens=20, temperature=0.8, top_k=5)  # runs past block_size
    assert out.shape == (3, 25) and torch.equal(out[:, :5], prompt)
    assert int(out.min()) >= 0 and int(out.max()) < model.config.vocab_size
    greedy = model.generate(prompt, max_new_tokens=8, temperature=0)
    expected = prompt
    with torch.no_grad():
        for _ in range(8):
            logits, _ = model(expected[:, -model.config.block_size:])
            expected = torch.cat([expected, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, expected)
    assert torch.equal(model.generate(prompt, max_new_tokens=8, temperature=0.7, top_k=1), expected)


def test_top_k_samples_only_the_top_k():
    model = tiny_model('gpt2')
    prompt = torch.zeros(64, 1, dtype=torch.long)
    with torch.no_grad():
        top3 = set(model(prompt[:1])[0][0, -1].topk(3).indices.tolist())
    torch.manual_seed(0)
    sampled = set(model.generate(prompt, max_new_tokens=1, temperature=5.0, top_k=3)[:, 1].tolist())
    assert sampled <= top3 and len(sampled) > 1


# ----------------------------------------------------------------------------- configuration

@pytest.mark.parametrize('n_embd', [64, 80, 200, 768, 2304, 4096])
def test_presets(n_embd):
    llama = ModelConfig(arch='llama', n_embd=n_embd, n_head=4)
    assert llama.d_ff == 256 * math.ceil(8 * n_embd / 3 / 256)
    assert (llama.norm, llama.position, llama.mlp, llama.norm_placement) == ('rmsnorm', 'rope', 'swiglu', 'pre')
    assert llama.tie_embeddings is False and llama.bias is False and llama.n_kv_head == 4
    assert llama.norm_eps == 1e-5 and llama.rope_theta == 10000.0
    gpt2 = ModelConfig(arch='gpt2', n_embd=n_embd, n_head=4)
    assert gpt2.d_ff == 4 * n_embd
    assert (gpt2.norm, gpt2.position, gpt2.mlp, gpt2.norm_placement) == ('layernorm', 'learned', 'gelu', 'pre')
    assert gpt2.tie_embeddings is True and gpt2.bias is False and gpt2.n_kv_head == 4


def test_explicit_fields_beat_presets():
    config = ModelConfig(arch='gpt2', n_embd=64, n_head=4, d_ff=100, tie_embeddings=False, bias=True, norm_eps=1e-6)
    assert (config.d_ff, config.tie_embeddings, config.bias, config.norm_eps) == (100, False, True, 1e-6)
    assert ModelConfig(arch='llama', n_embd=2304, n_head=18).d_ff == 6144
    assert production_config('full_llama_1.36b.py').d_ff == 6144  # the config's d_ff is the preset's rule
    assert production_config('full_gpt2_1.36b.py').d_ff == 4 * 2432


@pytest.mark.parametrize('kwargs, message', [
    (dict(n_embd=2432, n_head=18), r'n_embd \(2432\) must be divisible by n_head \(18\)'),
    (dict(n_embd=64, n_head=4, n_kv_head=3), r'n_head \(4\) must be divisible by n_kv_head \(3\)'),
    (dict(arch='bert'), 'arch must be one of'),
    (dict(norm='batchnorm'), 'norm must be one of'),
    (dict(n_layer=0), 'n_layer must be a positive integer'),
    (dict(n_embd=64.0, n_head=4), 'n_embd must be a positive integer, got 64.0'),
    (dict(n_embd=36, n_head=12), 'RoPE needs an even head size'),
])
def test_invalid_shapes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_sequence_longer_than_block_size():
    model = tiny_model(block_size=8)
    with pytest.raises(ValueError, match='longer than block_size'):
        model(torch.zeros(1, 9, dtype=torch.long))
