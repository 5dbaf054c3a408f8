"""
Batches from a prepared dataset folder (train.bin, val.bin, meta.pkl), for train.py and bench.py.

Which tokens a batch holds is a pure function of (seed, split, iteration, global micro-step):
resume needs no loader state, and the micro-batches of one optimizer step are the same set whatever
the number of ranks (rank r of W reads global micro-steps r, r+W, r+2W, ...). Evaluation reads a
fixed set of batches, the same at every evaluation and in every run with the same seed.
The memmap is opened per batch: a long-lived np.memmap grows the process's memory (nanoGPT's fix).
"""

import os
import pickle
from typing import Protocol

import numpy as np
import torch

from configurator import UserError

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
SPLITS = ('train', 'val')
_EVAL_STREAM = 2**32 - 1  # the counter that keys evaluation batches, apart from any training iteration


def resolve_dataset(dataset):
    """The folder of a dataset: a name under data/, or a path to any folder with the three files."""
    candidates = [dataset] if os.sep in dataset or dataset.startswith('.') else []
    candidates += [os.path.join(REPO_DIR, 'data', dataset), dataset]
    for path in candidates:
        if os.path.isdir(path):
            missing = [f for f in ('train.bin', 'val.bin', 'meta.pkl') if not os.path.isfile(os.path.join(path, f))]
            if missing:
                raise UserError(f"dataset folder '{path}' lacks {', '.join(missing)}: run its prepare.py "
                                f"(python data/{os.path.basename(os.path.normpath(path))}/prepare.py)")
            return path
    raise UserError(f"dataset '{dataset}' not found: expected data/{dataset}/ or a folder holding "
                    f"train.bin, val.bin and meta.pkl")


def load_meta(data_dir):
    try:
        with open(os.path.join(data_dir, 'meta.pkl'), 'rb') as f:
            meta = pickle.load(f)
        assert isinstance(meta, dict) and 'vocab_size' in meta
    except Exception:
        raise UserError(f"{data_dir}/meta.pkl is unreadable or not a dataset's meta.pkl: "
                        f"run the dataset's prepare.py again") from None
    return meta


class Batches(Protocol):
    """What train.py reads its batches from: TokenBatches here, bench.py's SyntheticBatches."""

    def batch(self, split: str, iteration: int, micro_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of global micro-step micro_step of an iteration, on the training device."""

    def eval_batch(self, split: str, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The index-th of the fixed evaluation batches of a split."""


class TokenBatches:
    """Random (x, y) windows of block_size + 1 tokens from one dataset folder. meta: its meta.pkl,
    where the caller has read it already."""

    def __init__(self, data_dir, batch_size, block_size, seed, device='cpu', vocab_size=None, meta=None):
        self.data_dir, self.batch_size, self.block_size, self.seed = data_dir, batch_size, block_size, seed
        self.device = torch.device(device)
        self.meta = meta if meta is not None else load_meta(data_dir)
        self.dtype = np.dtype(self.meta.get('dtype', 'uint16'))
        for split in SPLITS:
            n = self.num_tokens(split)
            if n < block_size + 1:
                raise UserError(f"{data_dir}/{split}.bin holds {n} tokens, fewer than block_size + 1 = "
                                f"{block_size + 1}: lower block_size or prepare more data")
        if vocab_size is not None and self.meta['vocab_size'] > vocab_size:
            raise UserError(f"dataset '{data_dir}' has token ids up to {self.meta['vocab_size'] - 1} but the model's "
                            f"vocab_size is {vocab_size}: set vocab_size >= {self.meta['vocab_size']} "
                            f"(or leave it unset to take the dataset's)")

    def _memmap(self, split):
        return np.memmap(os.path.join(self.data_dir, f'{split}.bin'), dtype=self.dtype, mode='r')

    def num_tokens(self, split):
        return os.path.getsize(os.path.join(self.data_dir, f'{split}.bin')) // self.dtype.itemsize

    def batch(self, split, iteration, micro_step):
        """The micro-batch of global micro-step `micro_step` of iteration `iteration`: a pure
        function of (seed, split, iteration, micro_step)."""
        data = self._memmap(split)
        rng = np.random.Generator(np.random.Philox(key=self.seed, counter=[SPLITS.index(split), iteration, micro_step, 0]))
        starts = rng.integers(0, len(data) - self.block_size, size=self.batch_size)
        windows = np.stack([data[s:s + self.block_size + 1] for s in starts]).astype(np.int64)
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :-1]))
        y = torch.from_numpy(np.ascontiguousarray(windows[:, 1:]))
        if self.device.type == 'cuda':  # pinned memory, so the copy overlaps with compute
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device), y.to(self.device)

    def eval_batch(self, split, index):
        """The index-th of the fixed evaluation batches of a split."""
        return self.batch(split, _EVAL_STREAM, index)
