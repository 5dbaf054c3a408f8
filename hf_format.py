"""
Our model in Hugging Face's format: LlamaForCausalLM or GPT2LMHeadModel with the same weights and the
same logits, and the checkpoint's tokenizer as Hugging Face tokenizer files. export_hf.py writes a
checkpoint as such a folder; eval_downstream.py evaluates one with lm_eval; bench.py times
transformers' model.

The weights map one to one (config/ARCH_LLAMA.md, config/ARCH_GPT2.md): the exported model gives the
same logits as ours (fp32, max abs difference under 1e-4; tests/test_model.py checks it, and save_hf
checks it again on a probe sequence before writing). Only the two standard mixes can be exported:
RMSNorm + RoPE + SwiGLU (LLaMA) and LayerNorm + learned positions + GELU (GPT-2), pre-norm.
"""

import contextlib
import os

import torch

from configurator import UserError

# Hugging Face's default special-token ids, used when the checkpoint's tokenizer cannot be loaded.
DEFAULT_TOKEN_IDS = {'llama': dict(bos=1, eos=2), 'gpt2': dict(bos=50256, eos=50256)}


def hf_arch(config):
    """'llama' or 'gpt2': which Hugging Face class can hold this configuration, or ValueError."""
    mix = (config.norm, config.position, config.mlp)
    arch = {('rmsnorm', 'rope', 'swiglu'): 'llama', ('layernorm', 'learned', 'gelu'): 'gpt2'}.get(mix)
    if arch is None:
        raise ValueError(f"norm={config.norm}, position={config.position}, mlp={config.mlp} is not a standard "
                         f"architecture: only rmsnorm+rope+swiglu (LlamaForCausalLM) or layernorm+learned+gelu "
                         f"(GPT2LMHeadModel) can be exported to Hugging Face")
    if config.norm_placement != 'pre':
        raise ValueError(f"norm_placement={config.norm_placement!r} cannot be exported: LlamaForCausalLM and "
                         f"GPT2LMHeadModel are pre-norm only")
    return arch


def _llama_state_dict(model):
    cfg = model.config
    q_size, kv_size = cfg.n_head * cfg.head_dim, cfg.n_kv_head * cfg.head_dim
    sd = {'model.embed_tokens.weight': model.wte.weight, 'model.norm.weight': model.norm_f.weight,
          'lm_head.weight': model.lm_head.weight}
    for i, block in enumerate(model.blocks):
        p = f'model.layers.{i}.'
        sd[p + 'input_layernorm.weight'] = block.norm_1.weight
        sd[p + 'post_attention_layernorm.weight'] = block.norm_2.weight
        for kind in ('weight', 'bias') if cfg.bias else ('weight',):
            q, k, v = getattr(block.attn.qkv, kind).split([q_size, kv_size, kv_size], dim=0)
            gate, up = getattr(block.mlp.fc, kind).chunk(2, dim=0)  # fc's output is [gate | up]
            sd.update({p + f'self_attn.q_proj.{kind}': q, p + f'self_attn.k_proj.{kind}': k,
                       p + f'self_attn.v_proj.{kind}': v,
                       p + f'self_attn.o_proj.{kind}': getattr(block.attn.proj, kind),
                       p + f'mlp.gate_proj.{kind}': gate, p + f'mlp.up_proj.{kind}': up,
                       p + f'mlp.down_proj.{kind}': getattr(block.mlp.proj, kind)})
    return sd


def _gpt2_state_dict(model):
    """GPT-2's Conv1D stores (in, out): our Linear weights transposed. Missing biases are zeros, and
    grouped-query k/v heads are repeated to full heads (what our attention does before the product)."""
    cfg = model.config
    d, hd, group = cfg.n_embd, cfg.head_dim, cfg.n_head // cfg.n_kv_head

    def bias_of(module, size):
        return module.bias if module.bias is not None else torch.zeros(size)

    def full_heads(t):  # (n_kv_head * hd, ...) -> (n_head * hd, ...), each kv head serving `group` q heads
        return t.unflatten(0, (cfg.n_kv_head, hd)).repeat_interleave(group, dim=0).flatten(0, 1)

    def qkv_full(t):
        q, k, v = t.split([d, cfg.n_kv_head * hd, cfg.n_kv_head * hd], dim=0)
        return torch.cat([q, full_heads(k), full_heads(v)], dim=0)

    sd = {'transformer.wte.weight': model.wte.weight, 'transformer.wpe.weight': model.wpe.weight,
          'transformer.ln_f.weight': model.norm_f.weight, 'transformer.ln_f.bias': bias_of(model.norm_f, d),
          'lm_head.weight': model.lm_head.weight}
    for i, block in enumerate(model.blocks):
        p = f'transformer.h.{i}.'
        qkv_rows = block.attn.qkv.weight.size(0)
        sd.update({
            p + 'ln_1.weight': block.norm_1.weight, p + 'ln_1.bias': bias_of(block.norm_1, d),
            p + 'attn.c_attn.weight': qkv_full(block.attn.qkv.weight).t(),
            p + 'attn.c_attn.bias': qkv_full(bias_of(block.attn.qkv, qkv_rows)),
            p + 'attn.c_proj.weight': block.attn.proj.weight.t(), p + 'attn.c_proj.bias': bias_of(block.attn.proj, d),
            p + 'ln_2.weight': block.norm_2.weight, p + 'ln_2.bias': bias_of(block.norm_2, d),
            p + 'mlp.c_fc.weight': block.mlp.fc.weight.t(), p + 'mlp.c_fc.bias': bias_of(block.mlp.fc, cfg.d_ff),
            p + 'mlp.c_proj.weight': block.mlp.proj.weight.t(), p + 'mlp.c_proj.bias': bias_of(block.mlp.proj, d),
        })
    return sd


def _without_init():
    """transformers' no_init_weights (every weight is overwritten; random init of 1B+ parameters takes
    ~20 s). It lives in transformers.initialization from 5.0, in modeling_utils before."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def _in_vocabulary(token_id, vocab_size):
    return token_id if token_id is not None and 0 <= token_id < vocab_size else None


def to_hf(model, token_ids=None):
    """The transformers model (fp32, CPU, eval mode) with our model's weights and the same logits.
    token_ids: {'bos': id or None, 'eos': id or None}, the training tokenizer's; by default Hugging
    Face's ids for the arch. An id outside the vocabulary is dropped."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
    cfg = model.config
    arch = hf_arch(cfg)
    token_ids = DEFAULT_TOKEN_IDS[arch] if token_ids is None else token_ids
    ids = {f'{which}_token_id': _in_vocabulary(token_ids.get(which), cfg.vocab_size) for which in ('bos', 'eos')}
    if arch == 'llama':
        hf_config = LlamaConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, intermediate_size=cfg.d_ff,
            num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_kv_head,
            head_dim=cfg.head_dim, hidden_act='silu', max_position_embeddings=cfg.block_size,
            rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta, attention_bias=cfg.bias, mlp_bias=cfg.bias,
            attention_dropout=cfg.dropout, tie_word_embeddings=cfg.tie_embeddings, initializer_range=0.02, **ids)
        with _without_init():
            hf_model = LlamaForCausalLM(hf_config)
        state_dict = _llama_state_dict(model)
    else:
        hf_config = GPT2Config(
            vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
            n_head=cfg.n_head, n_inner=cfg.d_ff, activation_function='gelu_new',  # gelu_new = tanh GELU
            resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
            layer_norm_epsilon=cfg.norm_eps, scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
            reorder_and_upcast_attn=False, tie_word_embeddings=cfg.tie_embeddings, initializer_range=0.02, **ids)
        with _without_init():
            hf_model = GPT2LMHeadModel(hf_config)
        state_dict = _gpt2_state_dict(model)
    state_dict = {k: v.detach().float().contiguous() for k, v in state_dict.items()}
    hf_model.tie_weights()  # skipped with the init; a no-op when untied
    missing, unexpected = hf_model.load_state_dict(state_dict, strict=False)
    parameter_names = {name for name, _ in hf_model.named_parameters(remove_duplicate=False)}
    assert not unexpected, f"weights Hugging Face's {type(hf_model).__name__} does not have: {unexpected}"
    assert not parameter_names & set(missing), f"weights left unset: {sorted(parameter_names & set(missing))}"
    if cfg.tie_embeddings:
        assert hf_model.get_output_embeddings().weight is hf_model.get_input_embeddings().weight
    return hf_model.eval()


@torch.no_grad()
def max_logit_difference(model, hf_model, length=32, seed=0):
    """max |our logits - Hugging Face's| on a random sequence (both in fp32, eval mode)."""
    length = min(length, model.config.block_size)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, model.config.vocab_size, (1, length), generator=generator)
    was_training = model.training
    model.eval()
    ours, _ = model(idx)
    model.train(was_training)
    return (ours.float() - hf_model(idx).logits.float()).abs().max().item()


# ----------------------------------------------------------------------------- tokenizer

def found_tokenizer(ckpt):
    """(spec, tokenizer, problem): tokenizer.tokenizer_of's (spec, tokenizer), or (None, None, why not)
    where it has none: a missing tokenizer does not stop an export, it is a note."""
    from tokenizer import tokenizer_of
    try:
        return (*tokenizer_of(ckpt, remedy=None), None)
    except UserError as e:  # offline hub, gated repo, moved file or dataset, a meta.pkl without a tokenizer
        return None, None, str(e)


def tiktoken_to_hf(encoding):
    """A transformers fast tokenizer that encodes as training did, tiktoken's encode_ordinary (byte-level
    BPE with the same ranks and split pattern): '<|endoftext|>' in a text is text (split_special_tokens),
    while the special tokens keep their ids, for the end of a document and for decoding. Built through
    transformers' TikTokenConverter."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class RanksConverter(TikTokenConverter):  # takes the ranks from memory, not from a .tiktoken file
        def load_tiktoken_bpe(self, _vocab_file):
            return encoding._mergeable_ranks

    specials = encoding._special_tokens
    backend = RanksConverter(pattern=encoding._pat_str).converted()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t in sorted(specials, key=specials.get)])
    moved = {t: i for t, i in specials.items() if backend.token_to_id(t) != i}
    if moved:
        raise ValueError(f"special tokens {sorted(moved)} would change id in the converted tokenizer")
    eot = '<|endoftext|>' if '<|endoftext|>' in specials else None
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=eot, eos_token=eot, split_special_tokens=True)


def save_tokenizer(spec, tokenizer, out_dir, max_length):
    """Write tokenizer (found_tokenizer's) into out_dir as Hugging Face tokenizer files.
    Returns a line saying what was written, or why nothing was."""
    kind, name = spec['kind'], spec.get('name')
    if kind == 'bytes':
        return "tokenizer: raw UTF-8 bytes (token id = byte value, 256 ends a document); no tokenizer files written"
    try:
        hf_tokenizer = tokenizer.tokenizer if kind == 'hf' else tiktoken_to_hf(tokenizer.encoding)
    except ValueError as e:
        return f"note: no tokenizer files written: {e}"
    # training encoded a text's '</s>' or '<|endoftext|>' as text (tokenizer.py): so does the saved tokenizer
    # (tokenizer_config.json's split_special_tokens, which AutoTokenizer, and so lm_eval, reads)
    hf_tokenizer.split_special_tokens = True
    hf_tokenizer.init_kwargs['split_special_tokens'] = True
    hf_tokenizer.model_max_length = max_length
    hf_tokenizer.save_pretrained(out_dir)
    return f"tokenizer: {kind} {name!r} saved"


# ----------------------------------------------------------------------------- a folder written

def check_out_dir(out_dir, force=False, key='--out'):
    """UserError unless out_dir can be written: a new or empty folder (or any folder with force)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{key} {out_dir} is a file; name a folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise UserError(f"{key} {out_dir} exists and is not empty; choose another folder"
                        f"{' or pass --force to write into it' if key == '--out' else ''}")


def save_hf(model, tokenizer_found, out_dir, dtype, ckpt_path):
    """Write model (ours, on CPU, of an exportable architecture) into out_dir as a Hugging Face folder
    with the tokenizer that found_tokenizer found, after checking the logits on a probe."""
    spec, tokenizer, problem = tokenizer_found
    token_ids = {'bos': tokenizer.bos_id, 'eos': tokenizer.eos_id} if tokenizer is not None else None
    hf_model = to_hf(model, token_ids)
    difference = max_logit_difference(model, hf_model)
    assert difference < 1e-3, f"the exported model's logits differ from ours by {difference:.3g}"
    block_size, n_params = model.config.block_size, model.num_params()
    hf_model.to(getattr(torch, dtype))
    os.makedirs(out_dir, exist_ok=True)
    hf_model.save_pretrained(out_dir, safe_serialization=True)
    if tokenizer is None:
        tokenizer_note = (f"note: no tokenizer files written: {problem}. The model is exported; save a tokenizer "
                          f"into the folder with tokenizer.save_pretrained()")
    else:
        tokenizer_note = save_tokenizer(spec, tokenizer, out_dir, block_size)
    hf_params = sum(p.numel() for p in hf_model.parameters())
    extra = (f" ({hf_params:,} in {type(hf_model).__name__}, whose zero biases or repeated k/v heads ours has "
             f"not)" if hf_params != n_params else "")
    print(f"{type(hf_model).__name__} from {ckpt_path}: {n_params:,} parameters{extra}, saved as {dtype}; "
          f"max |logit difference| from ours on a probe: {difference:.2e}")
    print(tokenizer_note)
    print(f"saved to {out_dir}: AutoModelForCausalLM.from_pretrained({out_dir!r})")
