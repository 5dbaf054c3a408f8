"""test_imports.py (the environment check) and gpu_specs.py (the bf16 peak table MFU divides by)."""

import os
import subprocess
import sys

import pytest

from gpu_specs import PEAK_BF16_TFLOPS, peak_tflops

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # imports every package it reports, in a process of its own
def test_environment_check_runs():
    result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'test_imports.py')],
                            capture_output=True, text=True, cwd=REPO_DIR, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for package in ('torch', 'numpy', 'tiktoken', 'transformers', 'tokenizers', 'datasets', 'tqdm', 'matplotlib',
                    'wandb', 'tensorboard'):
        assert f'  {package} ' in result.stdout, package
    assert 'all required packages are installed' in result.stdout
    import torch
    if not torch.cuda.is_available():
        assert 'no CUDA GPU found' in result.stdout and 'CPU-only training works' in result.stdout
    else:
        assert 'flash attention (SDPA, bf16):' in result.stdout


@pytest.mark.slow
def test_missing_package_fails(tmp_path):
    """A requirement that is not installed: named, and a non-zero exit."""
    script = tmp_path / 'test_imports.py'
    script.write_text(open(os.path.join(REPO_DIR, 'test_imports.py')).read())
    (tmp_path / 'requirements.txt').write_text('numpy>=1.0\nno_such_package_here>=1.0\n')
    (tmp_path / 'gpu_specs.py').write_text(open(os.path.join(REPO_DIR, 'gpu_specs.py')).read())
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert 'no_such_package_here MISSING' in result.stdout and 'pip install -r requirements.txt' in result.stderr


@pytest.mark.parametrize('name, peak', [
    ('NVIDIA H100 80GB HBM3', 989), ('NVIDIA H100 SXM5 80GB', 989), ('NVIDIA H100 PCIe', 756),
    ('NVIDIA H800', 989), ('NVIDIA H200', 989), ('NVIDIA H200 141GB HBM3e', 989), ('NVIDIA H20', 148),
    ('NVIDIA A100-SXM4-80GB', 312), ('NVIDIA A100-PCIE-40GB', 312), ('NVIDIA A800-SXM4-80GB', 312),
    ('NVIDIA L40S', 362), ('NVIDIA B200', 2250),
    # other peaks than the table's, or not in it: no MFU rather than a wrong one
    ('NVIDIA H100 NVL', None), ('NVIDIA L40', None), ('NVIDIA GB200', None), ('Tesla V100-SXM2-16GB', None),
    ('NVIDIA GeForce RTX 4090', None), ('', None),
])
def test_peak_tflops(name, peak):
    assert peak_tflops(name) == peak


def test_peak_table():
    assert PEAK_BF16_TFLOPS == {'H100 SXM': 989, 'H100 PCIe': 756, 'H800': 989, 'H200': 989, 'H20': 148,
                                'A100': 312, 'A800': 312, 'L40S': 362, 'B200': 2250}
