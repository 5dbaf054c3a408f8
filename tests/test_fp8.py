"""
fp8=True, on CPU: the key and its errors (no CUDA, a GPU without FP8 matmuls, another dtype, torchao
missing: one line, exit 2), which layers it converts, and checkpoints across the precision change:
a model with torchao's Float8Linear layers (FP8 arithmetic emulated on CPU: the real kernels need an
FP8 GPU, which tests/gpu covers) loads a plain checkpoint, trains, and writes a plain fp32 state dict
that a plain model loads exactly.
"""
import importlib.util
import os
from types import SimpleNamespace

import pytest
import torch

import helpers
import parallelize
from checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, training_state
from configurator import UserError
from model import ModelConfig, Transformer

needs_torchao = pytest.mark.skipif(importlib.util.find_spec('torchao') is None, reason="needs torchao")


def tiny():
    torch.manual_seed(0)
    return Transformer(ModelConfig(arch='llama', n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=100))


@pytest.mark.slow  # python train.py
def test_fp8_on_cpu_is_a_one_line_error(tmp_path):
    data = helpers.make_dataset(tmp_path / 'data')
    out = tmp_path / 'out'
    proc = helpers.run('train.py', helpers.train_args(data, str(out)) + ['--fp8=True'])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: fp8=True trains on a CUDA GPU with FP8 matmuls (H100, H200, H20, L40S), not on cpu: drop --fp8=True"]
    assert not out.exists()


@pytest.mark.parametrize('capability, dtype, torchao, message', [
    ((8, 0), 'bfloat16', True, "fp8=True needs FP8 matmuls (compute capability 8.9 or later); A100 has 8.0: drop --fp8=True"),
    ((9, 0), 'float16', True, "fp8=True trains under bfloat16 autocast (the layers it leaves alone): set --dtype=bfloat16, not 'float16'"),
    ((9, 0), 'bfloat16', False, "fp8=True needs torchao (its float8 training): pip install torchao"),
])
def test_fp8_errors_on_a_gpu(capability, dtype, torchao, message, monkeypatch):
    """The checks train.py makes on a CUDA device, with the device's answers given (no GPU here)."""
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'A100')
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'torchao' and not torchao else find_spec(name, *a))
    with pytest.raises(UserError) as e:
        parallelize.check_fp8(SimpleNamespace(device='cuda', dtype=dtype), 'cuda')
    assert str(e.value) == message


def test_fp8_converts_the_blocks_linear_layers_only():
    model = tiny()
    assert parallelize.fp8_layers(model) == [f'blocks.{i}.{name}' for i in range(2)
                                       for name in ('attn.qkv', 'attn.proj', 'mlp.fc', 'mlp.proj')]
    odd = Transformer(ModelConfig(arch='llama', n_layer=1, n_head=4, n_embd=64, d_ff=100, block_size=32, vocab_size=100))
    assert parallelize.fp8_layers(odd) == ['blocks.0.attn.qkv', 'blocks.0.attn.proj']  # 100 is not a multiple of 16


@needs_torchao
@pytest.mark.parametrize('fsdp', [False, True], ids=['fp8', 'fp8-fsdp-all-gather'])
def test_checkpoints_cross_the_precision_change(tmp_path, fsdp):
    """plain checkpoint -> fp8 model (emulated) -> two AdamW steps -> checkpoint -> plain model, exactly.
    fsdp: the weights wrapped for FSDP2's FP8 all-gather (torchao's WeightWithDynamicFloat8CastTensor),
    which the checkpoint stores as the plain fp32 tensors inside (the wrapper once went into the file)."""
    plain = tiny()
    path = str(tmp_path / 'ckpt.pt')
    args = dict(model_args=plain.config.to_dict(), iter_num=0, config={})
    scaler = torch.amp.GradScaler('cpu', enabled=False)
    optimizer = torch.optim.AdamW(plain.param_groups(0.1), lr=1e-2)
    save_checkpoint(training_state(plain, optimizer, scaler, True, **args), path)

    fp8 = model_from_checkpoint(load_checkpoint(path))
    parallelize.convert_to_fp8(fp8, emulate=True, fsdp=fsdp)
    assert type(fp8.blocks[0].attn.qkv).__name__ == 'Float8Linear' and type(fp8.lm_head) is torch.nn.Linear
    assert (type(fp8.blocks[0].mlp.fc.weight).__name__ == 'WeightWithDynamicFloat8CastTensor') == fsdp
    x = torch.randint(0, 100, (4, 33), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain_loss, fp8_loss = plain(x[:, :-1], x[:, 1:])[1].item(), fp8(x[:, :-1], x[:, 1:])[1].item()
    assert fp8_loss != plain_loss and abs(fp8_loss - plain_loss) < 0.01 * plain_loss  # FP8 rounding, same weights
    optimizer = torch.optim.AdamW(fp8.param_groups(0.1), lr=1e-2)
    for _ in range(2):
        fp8(x[:, :-1], x[:, 1:])[1].backward()
        optimizer.step()
        optimizer.zero_grad()
    save_checkpoint(training_state(fp8, optimizer, scaler, True, **dict(args, iter_num=2)), path)

    ckpt = load_checkpoint(path)
    assert set(ckpt['model']) == set(plain.state_dict())
    assert all(type(v) is torch.Tensor and v.dtype == torch.float32 for v in ckpt['model'].values())
    back = model_from_checkpoint(ckpt)  # strict: every key and shape
    for name, tensor in fp8.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    assert not torch.equal(back.blocks[0].attn.qkv.weight, plain.blocks[0].attn.qkv.weight)  # it trained
    assert os.path.getsize(path) > 0
