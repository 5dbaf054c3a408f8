"""
Run by test_save_memory.py under torchrun (2 ranks, CPU, gloo):

    torchrun --standalone --nproc_per_node=2 tests/save_memory_probe.py OUT.json TRAIN_ARGS...

Builds the run with train.py's own setup(), takes one optimizer step (so AdamW state exists), then
saves one checkpoint through train.save_training, the function train.py's loop calls, and measures
on each rank how much its host memory (RSS) grew while saving: the peak during the save minus the
RSS just before it. Two measures of that peak: the kernel's VmHWM (reset to the current RSS just
before the save through /proc/self/clear_refs) and a thread sampling VmRSS every 2 ms. Rank 0
writes OUT.json: every rank's numbers and, for reference, the size of the fp32 model and of the
full training state (model + AdamW's exp_avg and exp_avg_sq), in MiB.
"""
import ctypes
import gc
import json
import os
import re
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402

MiB = 2**20


def status_kib(key):
    """A field of /proc/self/status (VmRSS, VmHWM), in KiB."""
    with open('/proc/self/status') as f:
        return int(re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M).group(1))


def release_freed_memory():
    """Collect garbage and hand freed heap pages back to the OS, so that the RSS before the save holds
    no free memory that the save could reuse unseen."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak():
    """VmHWM := VmRSS (Linux >= 4.0). False where the kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


class RssSampler(threading.Thread):
    """The highest VmRSS seen, sampled every interval seconds until stop()."""

    def __init__(self, interval=0.002):
        super().__init__(daemon=True)
        self.interval, self.peak, self.done = interval, status_kib('VmRSS'), threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, status_kib('VmRSS'))
            time.sleep(self.interval)

    def stop(self):
        self.done.set()
        self.join()
        self.peak = max(self.peak, status_kib('VmRSS'))
        return self.peak


def state_sizes(raw_model):
    """(model MiB, full training state MiB): fp32 parameters and buffers of the state dict (a tied
    matrix once), and the same plus AdamW's two moments per parameter."""
    tensors = {id(v): v for v in raw_model.state_dict(keep_vars=True).values()}.values()
    model = sum(v.numel() * v.element_size() for v in tensors)
    moments = 2 * sum(p.numel() * 4 for p in raw_model.parameters())  # exp_avg, exp_avg_sq in fp32
    return model / MiB, (model + moments) / MiB


def save(t, c):
    """One checkpoint, exactly as train.py's loop saves it (a collective: every rank calls it)."""
    config_dict = {k: getattr(c, k) for k in train.DEFAULTS}
    run_log = train.open_run_log(t, config_dict, 0) if t.ranks.master else None
    state = train.RunState(iter_num=1, best_val_loss=float('inf'), start_iter=0)
    release_freed_memory()
    torch.distributed.barrier()
    before = status_kib('VmRSS')
    hwm_reset = reset_peak()
    sampler = RssSampler()
    sampler.start()
    t0 = time.time()
    train.save_training(t, state, run_log, config_dict, 'memory probe', print if t.ranks.master else (lambda *a: None))
    seconds = time.time() - t0
    sampled = sampler.stop()
    hwm = status_kib('VmHWM') if hwm_reset else None
    return dict(rss_before_mib=before / 1024, sampled_growth_mib=(sampled - before) / 1024,
                hwm_growth_mib=(hwm - before) / 1024 if hwm is not None else None, save_seconds=seconds)


def main(out_path, argv):
    c = train.parse_config(argv)
    t = train.setup(c)
    assert t.ranks.enabled and t.ranks.world_size == 2, "run under torchrun --nproc_per_node=2"
    train.train_step(t, 0)  # AdamW state exists from the first step on
    result = save(t, c)
    result['rank'] = t.ranks.rank
    # the growth while saving: the kernel's exact peak where it can be reset, the sampled one otherwise
    result['growth_mib'] = result['hwm_growth_mib'] if result['hwm_growth_mib'] is not None else result['sampled_growth_mib']
    everyone = [None] * t.ranks.world_size
    torch.distributed.all_gather_object(everyone, result)
    if t.ranks.master:
        model_mib, full_mib = state_sizes(t.raw_model)
        layout = 'fsdp2' if c.use_fsdp else 'zero1' if c.use_zero1 else 'ddp'
        report = dict(layout=layout, parameters=t.raw_model.num_params(), model_mib=model_mib,
                      full_state_mib=full_mib, ranks=everyone)
        with open(out_path, 'w') as f:
            json.dump(report, f, indent=1)
        for r in everyone:
            print(f"save memory probe: {layout} rank {r['rank']}: host memory grew {r['growth_mib']:.1f} MiB while "
                  f"saving (sampled {r['sampled_growth_mib']:.1f}; model {model_mib:.1f} MiB, model + AdamW "
                  f"{full_mib:.1f} MiB; save {r['save_seconds']:.1f}s)")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
