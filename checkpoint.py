"""
ckpt.pt: one file that torch.load opens on CPU, written atomically, read with clear errors.
Used by train.py, sample.py, export_hf.py and bench.py.

Contents (CHECKPOINT_VERSION 1):
    version        CHECKPOINT_VERSION
    model          plain state dict of the Transformer (no compile or DDP/FSDP prefixes), fp32
    model_args     ModelConfig fields, resolved (ModelConfig(**model_args) rebuilds the model)
    optimizer      AdamW state dict, full (ZeRO-1 consolidated, FSDP2 gathered), keyed like a
                   single-process torch.optim.AdamW over model.param_groups()
    iter_num       the number of optimizer steps taken
    best_val_loss  the best validation loss seen so far
    config         the effective training configuration
    rng            RNG states (torch CPU, CUDA, numpy, python)
    run_log        the run log's file name inside out_dir, so a resumed run appends to it
    tokenizer      the dataset's tokenizer spec from meta.pkl ({'kind', 'name'}), for sample.py and export_hf.py
"""

import os

import torch

from configurator import UserError

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ('version', 'model', 'model_args', 'iter_num', 'config')


def save_checkpoint(state, path):
    """Write to a temporary file, fsync, rename over path, fsync the folder: a crash at any moment
    leaves either the previous checkpoint or the new one, never a torn file."""
    tmp = path + '.tmp'
    try:
        with open(tmp, 'wb') as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        previous = "the previous checkpoint there is intact" if os.path.exists(path) else "no checkpoint was written"
        raise UserError(f"could not write checkpoint {path} ({e.strerror or e}); {previous}: "
                        f"free disk space or choose another out_dir") from None


def load_checkpoint(path):
    """The checkpoint at path, on CPU, or UserError saying what is wrong with it."""
    if not os.path.isfile(path):
        raise UserError(f"no checkpoint at {path}: train with init_from='scratch' first, or point out_dir at a run")
    try:
        # memory-mapped: the ranks of one machine share the page cache instead of a copy each
        ckpt = torch.load(path, map_location='cpu', weights_only=False, mmap=True)
    except Exception as e:
        raise UserError(f"{path} is truncated or not a checkpoint ({type(e).__name__}); "
                        f"restore it from a copy or start again with init_from='scratch'") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise UserError(f"{path} is not a checkpoint of this project (missing "
                        f"{[k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]})")
    if ckpt['version'] != CHECKPOINT_VERSION:
        raise UserError(f"{path} has checkpoint version {ckpt['version']}, this code reads version "
                        f"{CHECKPOINT_VERSION}")
    return ckpt


def model_from_checkpoint(ckpt):
    """The Transformer of a loaded checkpoint, its weights in place, on CPU. Built on the meta
    device and filled from the checkpoint: no random initialization of weights about to be replaced."""
    from model import ModelConfig, Transformer
    config = ModelConfig(**ckpt['model_args'])
    with torch.device('meta'):
        model = Transformer(config)
    model.to_empty(device='cpu')
    if config.tie_embeddings:  # to_empty gives each module its own tensor: tie them again
        model.lm_head.weight = model.wte.weight
    model.reset_buffers()
    try:
        model.load_state_dict(ckpt['model'])
    except RuntimeError as e:
        raise UserError(f"checkpoint weights do not fit its model_args: {str(e).splitlines()[0]}") from None
    return model
