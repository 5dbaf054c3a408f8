"""
Run by test_checkpoint_state.py, as `python tests/state_probe.py ARGS` or under torchrun: trains two
steps with train.py's own setup and step, gathers the checkpoint state as train.py does at an
evaluation, and checks that gathering left the training state exactly as it was (the same tensor
objects, device, dtype, type and values; the same RNG) and that the gathered state is a snapshot
that later steps do not change. Then trains on: the step after a checkpoint must run.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
from checkpoint import full_model_state, full_optimizer_state  # noqa: E402


def local(t):
    return t.to_local() if hasattr(t, 'to_local') else t


def live_state(s):
    """[(label, tensor object)] of every optimizer state tensor and every parameter, as they live."""
    opt = getattr(s.optimizer, 'optim', s.optimizer)  # ZeRO-1 wraps a local AdamW
    out = [(f'param {name}', p) for name, p in s.raw_model.named_parameters()]
    for i, (p, st) in enumerate(opt.state.items()):
        out += [(f'optimizer state {i}.{k}', v) for k, v in st.items() if torch.is_tensor(v)]
    return out


def describe(t):
    return (type(t).__name__, t.device, t.dtype, tuple(t.shape), getattr(t, 'placements', None))


def main(argv):
    c = train.parse_config(argv)
    s = train.setup(c)
    for it in range(2):
        train.train_step(s, it)
    before = [(label, t, describe(t), local(t).detach().clone()) for label, t in live_state(s)]
    assert any(label.startswith('optimizer') for label, *_ in before), "no optimizer state after two steps"
    rng_before = torch.get_rng_state()

    model_state = full_model_state(s.raw_model)
    optimizer_state = full_optimizer_state(s.optimizer, s.ranks.master)

    after = dict(live_state(s))
    assert len(after) == len(before)
    for label, t, desc, values in before:
        now = after[label]
        assert now is t, f"{label}: replaced by another tensor object ({describe(t)} -> {describe(now)})"
        assert describe(now) == desc, f"{label}: changed from {desc} to {describe(now)}"
        assert torch.equal(local(now), values), f"{label}: values changed"
    assert torch.equal(torch.get_rng_state(), rng_before), "the CPU RNG state changed"

    if s.ranks.master:  # the gathered state is a full, plain, CPU snapshot
        for name, value in model_state.items():
            assert type(value) is torch.Tensor and value.device.type == 'cpu', name
        tensors = [(f'{i}.{k}', v) for i, st in optimizer_state['state'].items() for k, v in st.items()
                   if torch.is_tensor(v)]
        for label, value in tensors:
            assert type(value) is torch.Tensor and value.device.type == 'cpu', label
        frozen = {label: value.clone() for label, value in tensors}
        frozen_model = {name: value.clone() for name, value in model_state.items()}

    for it in range(2, 4):  # the steps after a checkpoint (where the GPU path used to die)
        train.train_step(s, it)

    moved = sum(not torch.equal(local(t), values) for label, t, _, values in before if label.startswith('optimizer'))
    assert moved > 0, "the optimizer state did not change over two more steps: the snapshot check would be vacuous"
    if s.ranks.master:
        for label, value in tensors:
            assert torch.equal(value, frozen[label]), f"optimizer snapshot {label} changed with later steps"
        for name, value in model_state.items():
            assert torch.equal(value, frozen_model[name]), f"model snapshot {name} changed with later steps"
        print(f"state probe: {len(before)} live tensors unchanged, snapshot of {len(tensors)} optimizer tensors "
              f"independent of later steps")
    if s.ranks.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1:])
