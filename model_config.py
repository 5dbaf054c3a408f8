"""
The model's configuration: the architecture presets, the d_ff rule, ModelConfig and its checks.

Standard library only, so that what needs a model's shape but not its weights imports it without
torch. model.py builds the Transformer from a ModelConfig (and re-exports ModelConfig and
MODEL_FIELDS); the cost tool (flops_parameter_counting/detailed_cost_analysis.py) resolves its shapes
through it. So each preset, the d_ff rule and each check is written once.
"""

import math
from dataclasses import dataclass, fields, asdict
from typing import Optional

# The architecture presets (config/ARCH_LLAMA.md, config/ARCH_GPT2.md). d_ff is a rule, not a number.
PRESETS = {
    'llama': dict(norm='rmsnorm', position='rope', mlp='swiglu', norm_placement='pre',
                  tie_embeddings=False, bias=False, norm_eps=1e-5, rope_theta=10000.0, residual_dtype='float32'),
    'gpt2': dict(norm='layernorm', position='learned', mlp='gelu', norm_placement='pre',
                 tie_embeddings=True, bias=False, norm_eps=1e-5, rope_theta=10000.0, residual_dtype='float32'),
}
CHOICES = dict(arch=('llama', 'gpt2'), norm=('rmsnorm', 'layernorm'), position=('rope', 'learned'),
               mlp=('swiglu', 'gelu'), norm_placement=('pre', 'post'), residual_dtype=('float32', 'compute'))


def default_d_ff(mlp, n_embd):
    if mlp == 'swiglu':  # LLaMA: 2/3 of 4d keeps the FLOPs of a 4d GELU MLP; rounded up to 256
        return 256 * math.ceil(8 * n_embd / 3 / 256)
    return 4 * n_embd


@dataclass
class ModelConfig:
    arch: str = 'llama'
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: Optional[int] = None      # None = n_head; fewer = grouped-query attention
    n_embd: int = 768
    d_ff: Optional[int] = None           # None = the preset's rule (default_d_ff)
    block_size: int = 1024
    vocab_size: int = 32000
    bias: Optional[bool] = None          # biases in linear layers and LayerNorm
    dropout: float = 0.0
    norm: Optional[str] = None           # 'rmsnorm' | 'layernorm'
    norm_eps: Optional[float] = None
    norm_placement: Optional[str] = None  # 'pre' | 'post' (post: x = norm(x + f(x)))
    position: Optional[str] = None       # 'rope' | 'learned'
    rope_theta: Optional[float] = None
    mlp: Optional[str] = None            # 'swiglu' | 'gelu'
    tie_embeddings: Optional[bool] = None
    residual_dtype: Optional[str] = None  # 'float32' | 'compute': the residual stream under autocast

    def __post_init__(self):
        if self.arch not in PRESETS:
            raise ValueError(f"arch must be one of {CHOICES['arch']}, got {self.arch!r}")
        for key, value in PRESETS[self.arch].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.d_ff is None and isinstance(self.n_embd, int):  # a non-integer n_embd is validate()'s to report
            self.d_ff = default_d_ff(self.mlp, self.n_embd)
        self.validate()

    def validate(self):
        """Shape errors a user can make, as ValueError with a one-line message."""
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        for key in ('n_layer', 'n_head', 'n_kv_head', 'n_embd', 'd_ff', 'block_size', 'vocab_size'):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}); "
                             f"choose n_head among {[h for h in range(1, 65) if self.n_embd % h == 0]}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head ({self.n_head}) must be divisible by n_kv_head ({self.n_kv_head})")
        if self.position == 'rope' and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"RoPE needs an even head size, got n_embd/n_head = {self.n_embd // self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    def to_dict(self):
        return asdict(self)


MODEL_FIELDS = tuple(f.name for f in fields(ModelConfig))
