"""
How a model is spread over devices and made cheaper to train, applied from outside the model
(torchtitan's parallelize.py is the pattern: model.py knows nothing of this):

    parallelize(model, c, ranks, dev)   FP8 layers, activation checkpointing, torch.compile, then DDP or
                                        FSDP2 (fully_shard per block, then the root)
    build_optimizer(model, c, dev)      AdamW, fused on GPU; ZeRO-1 shards its state over the ranks
    check_fp8(c, device_type)           fp8=True's requirements, checked before any work
    quiet_torchao_import()              torchao's import-time log lines off the console

c is train.py's configuration namespace (the keys at the top of train.py), ranks its Ranks and dev
its Device.
"""

import dataclasses
import importlib.util
import logging

import torch

from configurator import UserError


def recomputed_in_backward(forward):
    """forward, wrapped so that its activations are recomputed in backward instead of kept."""
    from torch.utils.checkpoint import checkpoint

    def run(*args):
        return checkpoint(forward, *args, use_reentrant=False)
    return run


def check_fp8(c, device_type):
    """fp8=True needs a CUDA GPU with FP8 matmuls (compute capability 8.9: Ada, Hopper and later),
    bfloat16 autocast and torchao."""
    if device_type != 'cuda':
        raise UserError(f"fp8=True trains on a CUDA GPU with FP8 matmuls (H100, H200, H20, L40S), not on "
                        f"{device_type}: drop --fp8=True")
    major, minor = torch.cuda.get_device_capability(c.device)
    if (major, minor) < (8, 9):
        raise UserError(f"fp8=True needs FP8 matmuls (compute capability 8.9 or later); "
                        f"{torch.cuda.get_device_name(c.device)} has {major}.{minor}: drop --fp8=True")
    if c.dtype != 'bfloat16':
        raise UserError(f"fp8=True trains under bfloat16 autocast (the layers it leaves alone): set "
                        f"--dtype=bfloat16, not {c.dtype!r}")
    if importlib.util.find_spec('torchao') is None:
        raise UserError("fp8=True needs torchao (its float8 training): pip install torchao")


# What logs when torchao is imported: torchao a warning for each of its compiled extensions that does not
# load (on a machine without CUDA, all its CUDA kernels: "Failed to load .../_C_mxfp8...so"), torch a
# deprecation note for each enum torchao registers with torch.compile. None concerns a script that does not
# use torchao's compiled kernels (fp8=True's torchao.float8 does not).
TORCHAO_IMPORT_LOGGERS = ('torchao', 'torch.utils._pytree')


def quiet_torchao_import():
    """Keep torchao's import-time warnings off the console, for the rest of the process. transformers
    imports torchao, where it is installed, with any of its model classes (to offer its quantization):
    export_hf.py and bench.py's Hugging Face baseline call this before they load transformers' models.
    Errors still show."""
    for name in TORCHAO_IMPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def fp8_layers(model):
    """The Linear layers fp8 converts: those of the blocks (attention and MLP), not the output layer
    (kept in bf16: the loss reads its logits), and only where both dimensions are multiples of 16
    (FP8 matmuls need them)."""
    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
            and name.startswith('blocks.') and m.in_features % 16 == 0 and m.out_features % 16 == 0]


def convert_to_fp8(model, emulate=False, fsdp=False):
    """Swap fp8_layers(model) for torchao's Float8Linear, tensorwise scaling, in place. The parameters
    stay the same fp32 tensors (so the state dict, the checkpoint and the optimizer see no change);
    only the matmuls cast their inputs to FP8 with a scale per tensor. emulate: FP8 arithmetic emulated
    in higher precision (no FP8 hardware: the tests on CPU). fsdp: FSDP2 all-gathers these weights in
    FP8 (half the bytes of bf16), their scales computed for all of them at once after each optimizer
    step (fp8_scales_after_step) instead of one all-reduce per weight per gather; NCCL only (gloo
    has no FP8 types)."""
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    config = dataclasses.replace(Float8LinearConfig.from_recipe_name('tensorwise'), emulate=emulate,
                                 enable_fsdp_float8_all_gather=fsdp)
    chosen = set(fp8_layers(model))
    convert_to_float8_training(model, config=config, module_filter_fn=lambda m, name: name in chosen)
    return model


def fp8_scales_after_step(model):
    """FSDP2 with FP8 all-gather: the scales of the new weights, from one all-reduce of their amaxes."""
    from torchao.float8 import precompute_float8_dynamic_scale_for_fsdp
    precompute_float8_dynamic_scale_for_fsdp(model)


def parallelize(model, c, ranks, dev):
    """Apply FP8 layers, activation checkpointing, torch.compile and DDP / FSDP2 to an unmodified
    model (torchtitan's recipe: the model file knows nothing about parallelism)."""
    if c.fp8:
        convert_to_fp8(model, fsdp=c.use_fsdp)
    # torch.compile's partitioner: 1.0 saves what the fastest backward needs; below, it recomputes the
    # activations cheapest to recompute per byte (a knapsack on their FLOPs) until the rest fit the budget
    from torch._functorch import config as functorch_config
    functorch_config.activation_memory_budget = c.activation_memory_budget
    if c.activation_checkpointing:
        for block in model.blocks:  # an instance-level forward: the state dict keeps its names
            block.forward = recomputed_in_backward(block.forward)
    if c.use_fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        mesh = init_device_mesh(dev.type, (ranks.world_size,))
        # bf16 params for compute, fp32 gradient reduction; fp32 master weights stay sharded. The blocks'
        # inputs (the residual stream, RoPE's tables) are not cast: they keep residual_dtype, as in one process
        mp = (MixedPrecisionPolicy(param_dtype=dev.ptdtype, reduce_dtype=torch.float32, cast_forward_inputs=False)
              if dev.type == 'cuda' else None)
        kwargs = dict(mesh=mesh, **({'mp_policy': mp} if mp is not None else {}))
        for block in model.blocks:
            if c.compile:
                block.compile(mode=c.compile_mode)
            fully_shard(block, **kwargs)
        fully_shard(model, **kwargs)
        return model
    if c.compile:
        model = torch.compile(model, mode=c.compile_mode)
    if ranks.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP
        # gradients as views into DDP's all-reduce buckets: no second fp32 copy of every gradient
        model = DDP(model, device_ids=[ranks.local_rank] if dev.type == 'cuda' else None,
                    gradient_as_bucket_view=True)
    return model


def build_optimizer(raw_model, c, dev):
    """AdamW over the plain model's parameter groups (weight decay on the matmul weights only):
    fused into one kernel on GPU; with use_zero1 its state is sharded over the ranks."""
    groups = raw_model.param_groups(c.weight_decay)
    kwargs = dict(lr=c.learning_rate, betas=(c.beta1, c.beta2))
    if dev.type == 'cuda':
        kwargs['fused'] = True  # one kernel for the whole update
    if c.use_zero1:
        from torch.distributed.optim import ZeroRedundancyOptimizer
        return ZeroRedundancyOptimizer(groups, optimizer_class=torch.optim.AdamW, **kwargs)
    return torch.optim.AdamW(groups, **kwargs)
