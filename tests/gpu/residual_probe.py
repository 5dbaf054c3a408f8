"""
Run by test_workflows.py under torchrun: builds train.py's model as a run with the given arguments
does (FSDP2 when --use_fsdp=True), runs one forward in the run's autocast and prints one JSON line
with the dtypes every block receives: the residual stream and RoPE's cos table; and, with fp8=True, the
type of the FP8 layers' local weight shards (FSDP2 gathers torchao's WeightWithDynamicFloat8CastTensor
in FP8).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import train  # noqa: E402


def main(argv):
    t = train.setup(train.parse_config(argv))
    seen = []

    def record(module, args):  # registered after FSDP2's own hook: sees what the block computes with
        x, rope = args
        seen.append((str(x.dtype), str(rope[0].dtype) if rope is not None else None))
    for block in t.raw_model.blocks:
        block.register_forward_pre_hook(record)
    x, y = t.batches.batch('train', 0, 0)
    with t.device.autocast:
        t.model(x, y)
    if t.ranks.master:
        print(json.dumps({'residual': sorted({s[0] for s in seen}), 'rope': sorted({str(s[1]) for s in seen}),
                          'blocks': len(seen),
                          'fp8_weights': sorted({type(getattr(m.weight, '_local_tensor', m.weight)).__name__
                                                 for m in t.raw_model.modules() if type(m).__name__ == 'Float8Linear'})}))
    if t.ranks.enabled:
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1:])
