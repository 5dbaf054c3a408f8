"""
One decoder-only Transformer that is LLaMA or GPT-2 by configuration.

    ModelConfig(arch='llama', ...)  RMSNorm, RoPE, SwiGLU, untied embeddings
    ModelConfig(arch='gpt2', ...)   LayerNorm, learned positions, GELU(tanh), tied embeddings

ModelConfig, its presets and its checks live in model_config.py, without torch (the cost tool
reads them too); a field left as None takes its arch's preset. Norm, positions and feed-forward
are chosen once, in the constructors; forward() has no architecture branches beyond that.
The weights map one to one onto Hugging Face's LlamaForCausalLM / GPT2LMHeadModel (export_hf.py).
The model knows nothing about parallelism: DDP, ZeRO-1, FSDP2 and torch.compile are applied to it
from outside (parallelize.py).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from model_config import MODEL_FIELDS, ModelConfig  # noqa: F401  MODEL_FIELDS: re-exported, for train.py


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in fp32 (as Hugging Face's LlamaRMSNorm)."""

    def __init__(self, dim, eps, bias=False):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x.float(), (x.size(-1),), self.weight.float(), self.eps).type_as(x)


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no bias=False before 2.1; kept explicit)."""

    def __init__(self, dim, eps, bias=False):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, (x.size(-1),), self.weight, self.bias, self.eps)


NORMS = {'rmsnorm': RMSNorm, 'layernorm': LayerNorm}


def rope_tables(head_dim, length, theta):
    """cos and sin of shape (length, head_dim / 2): the angles of Hugging Face's rotate-half RoPE,
    whose tables repeat these halves twice."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate-half RoPE, x * [cos, cos] + [-x2, x1] * [sin, sin], written per half so that its
    backward is plain arithmetic (no zero-padded slice gradients). x: (B, T, heads, head_dim);
    cos, sin: (T, 1, head_dim / 2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        # q, k and v in one matmul: [q (n_head heads) | k (n_kv_head) | v (n_kv_head)]
        self.qkv = nn.Linear(config.n_embd, (config.n_head + 2 * config.n_kv_head) * self.head_dim,
                             bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.proj.is_residual_projection = True
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.use_rope = config.position == 'rope'

    def forward(self, x, rope):
        B, T, C = x.size()
        q, k, v = self.qkv(x).split(
            [self.n_head * self.head_dim, self.n_kv_head * self.head_dim, self.n_kv_head * self.head_dim], dim=-1)
        q = q.view(B, T, self.n_head, self.head_dim)
        k = k.view(B, T, self.n_kv_head, self.head_dim)
        v = v.view(B, T, self.n_kv_head, self.head_dim)
        if self.use_rope:  # in the (B, T, heads, head_dim) layout of the qkv matmul: coalesced, forward and backward
            cos, sin = rope
            q, k = apply_rope(q, cos, sin).type_as(v), apply_rope(k, cos, sin).type_as(v)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if self.n_kv_head != self.n_head:  # grouped-query attention: each kv head serves n_head/n_kv_head q heads
            k = k.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); GELU: down(gelu_tanh(up(x))).
    For SwiGLU, gate and up are one matmul (fc's output is [gate | up])."""

    def __init__(self, config):
        super().__init__()
        self.gated = config.mlp == 'swiglu'
        self.fc = nn.Linear(config.n_embd, (2 if self.gated else 1) * config.d_ff, bias=config.bias)
        self.proj = nn.Linear(config.d_ff, config.n_embd, bias=config.bias)
        self.proj.is_residual_projection = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        h = self.fc(x)
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h, approximate='tanh')
        return self.dropout(self.proj(h))


class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        norm = NORMS[config.norm]
        self.norm_1 = norm(config.n_embd, config.norm_eps, config.bias)
        self.attn = CausalSelfAttention(config)
        self.norm_2 = norm(config.n_embd, config.norm_eps, config.bias)
        self.mlp = MLP(config)
        self.pre_norm = config.norm_placement == 'pre'

    def forward(self, x, rope):
        if self.pre_norm:
            x = x + self.attn(self.norm_1(x), rope)
            return x + self.mlp(self.norm_2(x))
        x = self.norm_1(x + self.attn(x, rope))
        return self.norm_2(x + self.mlp(x))


class Transformer(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.position == 'learned' else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.norm_f = NORMS[config.norm](config.n_embd, config.norm_eps, config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        if config.position == 'rope':  # not persistent: recomputed at load, never in a checkpoint
            cos, sin = rope_tables(config.head_dim, config.block_size, config.rope_theta)
            self.register_buffer('rope_cos', cos, persistent=False)
            self.register_buffer('rope_sin', sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.apply(self._init_weights)

    def _init_weights(self, module):
        # GPT-2's init (nanoGPT): N(0, 0.02); residual projections scaled by 1/sqrt(2 n_layer),
        # one factor for each of the two residual additions a layer makes (GPT-2 paper, section 2.3).
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, 'is_residual_projection', False):
                std = 0.02 / math.sqrt(2 * self.config.n_layer)
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        elif isinstance(module, (RMSNorm, LayerNorm)):
            torch.nn.init.ones_(module.weight)
            if getattr(module, 'bias', None) is not None:
                torch.nn.init.zeros_(module.bias)

    def reset_buffers(self):
        """Recompute the RoPE tables (after to_empty() from the meta device)."""
        if self.rope_cos is not None:
            cos, sin = rope_tables(self.config.head_dim, self.config.block_size, self.config.rope_theta)
            self.rope_cos.copy_(cos)
            self.rope_sin.copy_(sin)

    def num_params(self):
        """Every parameter, the tied embedding counted once (the production table's count)."""
        return sum(p.numel() for p in self.parameters())

    def num_matmul_params(self):
        """Parameters used in matrix multiplies: all but the input embedding lookup and learned
        positions. A tied embedding counts once, as the output layer (PaLM appendix B)."""
        n = self.num_params() - (self.wpe.weight.numel() if self.wpe is not None else 0)
        if not self.config.tie_embeddings:
            n -= self.wte.weight.numel()
        return n

    def flops_per_token(self, seq_len=None):
        """Training FLOPs per token, 6N + 12 L H Q T (PaLM, appendix B): forward and backward
        of the matmuls (6N) plus attention scores and values (12 L H Q T)."""
        cfg = self.config
        seq_len = seq_len or cfg.block_size
        return 6 * self.num_matmul_params() + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len

    def forward(self, idx, targets=None, return_logits=True, reduction='mean'):
        """logits (B, T, vocab) and, with targets, the cross-entropy: its mean over the targets that
        are not -1, or with reduction='none' each target's (B * T,), 0 where the target is -1."""
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        if self.config.residual_dtype == 'float32':  # FSDP2 computes with bf16 parameters: the stream stays fp32
            x = x.float()
        elif self.config.residual_dtype == 'compute' and torch.is_autocast_enabled(x.device.type):
            # the residual stream in autocast's dtype (bf16), as Megatron-LM keeps it by default: half
            # the activation memory and traffic of the fp32 stream; norms still compute in fp32
            x = x.to(torch.get_autocast_dtype(x.device.type))
        x = self.drop(x)
        rope = (self.rope_cos[:T, None], self.rope_sin[:T, None]) if self.rope_cos is not None else None
        for block in self.blocks:
            x = block(x, rope)
        x = self.norm_f(x)
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1,
                                   reduction=reduction)
            if not return_logits:
                logits = None
        return logits, loss

    def param_groups(self, weight_decay):
        """AdamW groups. Decay: the matrices of linear layers (the output layer included, also when
        tied to the input embedding). No decay: norms, biases, and untied input embeddings and
        learned positions, which are lookups whose rows see gradient only when their token occurs;
        decaying them shrinks rare tokens toward zero (as OLMo and many LLaMA recipes do)."""
        linear_weights = {id(m.weight) for m in self.modules() if isinstance(m, nn.Linear)}
        decay = [p for p in self.parameters() if id(p) in linear_weights]
        no_decay = [p for p in self.parameters() if id(p) not in linear_weights]
        return [{'params': decay, 'weight_decay': weight_decay},
                {'params': no_decay, 'weight_decay': 0.0}]

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, eos_id=None, vocab_limit=None):
        """Sample max_new_tokens tokens after idx (B, T). temperature 0 means greedy. vocab_limit: the
        tokenizer's vocabulary; ids from it up (a vocabulary padded past the tokenizer's) are never drawn."""
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :].float()
            if vocab_limit is not None:
                logits[:, vocab_limit:] = -float('inf')
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float('inf')
                next_id = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, next_id), dim=1)
            if eos_id is not None and bool((next_id == eos_id).all()):
                break
        return idx
