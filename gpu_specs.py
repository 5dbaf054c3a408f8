"""
Dense bf16 peak throughput per GPU, for MFU (train.py, bench.py) and the environment check
(test_imports.py); and the sustained rate of a large bf16 matmul on a healthy GPU, for bench.py's
throttling check. Dense means without 2:4 sparsity: the datasheets' headline figures are often the
sparse ones, twice as large (the H20's "296 TFLOPS" is its FP8 dense / BF16 sparse figure; its dense
BF16 peak is 148), and MFU against them would be halved.
"""

import re

# TFLOP/s, dense bf16 tensor-core peak from NVIDIA's datasheets.
PEAK_BF16_TFLOPS = {
    'H100 SXM': 989.0,
    'H100 PCIe': 756.0,
    'H800': 989.0,
    'H200': 989.0,
    'H20': 148.0,
    'A100': 312.0,
    'A800': 312.0,
    'L40S': 362.0,
    'B200': 2250.0,
}

# TFLOP/s that back-to-back 8192^3 bf16 matmuls sustain on a healthy, unthrottled GPU (bench.py's
# matmul check; a run under 90% of it is marked throttled). Measured, not from datasheets: None = not
# measured yet, and then only NVML's throttle reasons and a drop from before to after the run decide.
USUAL_MATMUL_TFLOPS = {
    # NVIDIA H100 80GB HBM3, torch 2.11 + CUDA 13, 2026-11-25: 683-684 TFLOP/s sustained over 3 s at its
    # 700 W power cap (SM clock 1440 of 1980 MHz, 60 C, no thermal or hardware slowdown); a short burst
    # reaches ~770 before the power cap brings the clock down
    'H100 SXM': 683.0,
    'H100 PCIe': None,
    'H800': None,
    'H200': None,
    'H20': None,
    'A100': None,
    'A800': None,
    'L40S': None,
    'B200': None,
}

# (table key, pattern on the lower-cased device name, pattern that must not match), first match wins.
# Names as torch.cuda.get_device_name reports them: 'NVIDIA H100 80GB HBM3', 'NVIDIA H100 PCIe',
# 'NVIDIA A100-SXM4-80GB', 'NVIDIA H20'. Variants with another peak (H100 NVL, H800 PCIe, H200 NVL,
# GB200, L40 without S) deliberately match nothing: no MFU beats a wrong one.
_NAME_RULES = (
    ('H100 PCIe', r'\bh100\b.*\bpcie\b', None),
    ('H100 SXM', r'\bh100\b', r'\b(pcie|nvl)\b'),
    ('H800', r'\bh800\b', r'\bpcie\b'),
    ('H200', r'\bh200\b', r'\bnvl\b'),
    ('H20', r'\bh20\b', None),
    ('A100', r'\ba100\b', None),
    ('A800', r'\ba800\b', None),
    ('L40S', r'\bl40s\b', None),
    ('B200', r'\bb200\b', None),
)


def gpu_model(device_name):
    """The PEAK_BF16_TFLOPS key for a device name, or None for a GPU not in the table."""
    name = device_name.lower()
    for key, pattern, exclude in _NAME_RULES:
        if re.search(pattern, name) and not (exclude and re.search(exclude, name)):
            return key
    return None


def peak_tflops(device_name):
    """Dense bf16 peak in TFLOP/s for a device name (e.g. torch.cuda.get_device_name()), or None."""
    key = gpu_model(device_name)
    return PEAK_BF16_TFLOPS[key] if key else None


def usual_matmul_tflops(device_name):
    """The sustained 8192^3 bf16 matmul rate of a healthy GPU of this name, in TFLOP/s, or None."""
    key = gpu_model(device_name)
    return USUAL_MATMUL_TFLOPS.get(key) if key else None
