"""
Saving a checkpoint under torchrun (2 CPU ranks, gloo) copies the training state to host memory on
rank 0 only: tests/save_memory_probe.py builds the run with train.py's setup, takes one optimizer
step and saves through train.save_training, measuring each rank's host memory growth while saving
(peak RSS during the save minus the RSS before it). The model is LLaMA-style, 57M parameters (218
MiB fp32; 653 MiB with AdamW's two moments), so that a copy stands far above the noise.

glibc's malloc is given a fixed mmap threshold: by default it raises the threshold after large
frees, and the gathered tensors a rank frees at once (FSDP2) then stay in its heap as free memory
(about 100 MiB here), which RSS counts though the rank holds nothing.
"""
import json
import os
import subprocess

import pytest

import helpers

pytestmark = pytest.mark.slow  # tests/save_memory_probe.py under torchrun

MODEL = ['--n_layer=8', '--n_head=12', '--n_kv_head=12', '--n_embd=768']  # 57,030,912 parameters
LAYOUTS = {'ddp': [], 'zero1': ['--use_zero1=True'], 'fsdp2': ['--use_fsdp=True']}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return helpers.make_dataset(tmp_path_factory.mktemp('data'))


@pytest.mark.parametrize('layout', ['ddp', 'zero1', 'fsdp2'])
def test_only_rank0_copies_the_state_while_saving(layout, data, tmp_path):
    out_dir, report_path = tmp_path / 'out', tmp_path / 'report.json'
    args = helpers.train_args(data, str(out_dir), batch_size=2, gradient_accumulation_steps=2) + MODEL + LAYOUTS[layout]
    proc = subprocess.run(helpers.command('tests/save_memory_probe.py', [report_path, *args], nproc=2),
                          cwd=helpers.REPO, env=helpers.env(MALLOC_MMAP_THRESHOLD_='131072'),
                          capture_output=True, text=True, timeout=helpers.TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out_dir / 'ckpt.pt').is_file()
    with open(report_path) as f:
        report = json.load(f)
    model, full = report['model_mib'], report['full_state_mib']
    growth = {r['rank']: r['growth_mib'] for r in report['ranks']}
    print(f"{layout}: growth while saving {growth} MiB; model {model:.0f} MiB, model + AdamW {full:.0f} MiB")
    assert growth[0] >= model, f"rank 0 grew {growth[0]:.0f} MiB while saving: less than the model ({model:.0f} MiB)"
    assert growth[1] < 0.25 * model, (f"rank 1 grew {growth[1]:.0f} MiB while saving, not well below the model "
                                      f"({model:.0f} MiB; model + AdamW {full:.0f} MiB)")
