"""
Taking a checkpoint never changes the training state, in every layout (one process, DDP, ZeRO-1,
FSDP2 under torchrun on 2 CPU ranks with gloo): tests/state_probe.py trains two steps, gathers the
checkpoint state, checks every live tensor (same object, device, dtype, type, DTensor placements,
values) and the RNG, trains on, and checks the gathered snapshot did not move with the live state.
"""
import pytest

import helpers

pytestmark = pytest.mark.slow  # tests/state_probe.py trains, alone and under torchrun

LAYOUTS = {'single': ([], None), 'ddp': ([], 2), 'zero1': (['--use_zero1=True'], 2),
           'fsdp2': (['--use_fsdp=True'], 2)}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return helpers.make_dataset(tmp_path_factory.mktemp('data'))


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_checkpoint_leaves_training_state_untouched(layout, data, tmp_path):
    extra, nproc = LAYOUTS[layout]
    args = helpers.train_args(data, str(tmp_path / 'out'), gradient_accumulation_steps=2) + extra
    proc = helpers.run('tests/state_probe.py', args, nproc=nproc)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'state probe:' in proc.stdout and 'live tensors unchanged' in proc.stdout
