"""
Batches from a prepared dataset folder (train.bin, val.bin, meta.pkl), for train.py and bench.py.

Which tokens a batch holds is a pure function of (seed, split, iteration, global micro-step):
resume needs no loader state beyond the window count a checkpoint records, and the micro-batches
of one optimizer step are the same set whatever the number of ranks (rank r of W reads global
micro-steps r, r+W, r+2W, ...).

Training order (data_order):
- 'epoch' (default): one true pass. The split is cut into non-overlapping windows of block_size + 1
  tokens that advance by block_size (window w holds tokens [w*T, w*T + T], so every token after the
  first is a target exactly once per pass; the last len % T tokens, fewer than one window, are not
  read). Each pass visits every window once, in a permutation drawn from (seed, pass). Sample g of
  the run (counted over all ranks and micro-steps: g = windows before this iteration + micro_step x
  batch_size + row) is window perm_{g // n}[g % n].
- 'random': nanoGPT's sampling with replacement: each row starts at a random offset.

Evaluation reads a fixed set of batches, the same at every evaluation and in every run with the
same seed: the training split's at random offsets, the validation split's from its beginning, in
document order, window after window (so the scored text is the first documents of the split,
whatever the seed, and a per-token and a per-byte score cover the same targets).
The memmap is opened per batch: a long-lived np.memmap grows the process's memory (nanoGPT's fix).
"""

import os
import pickle
from typing import Optional, Protocol

import numpy as np
import torch

from configurator import UserError

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
SPLITS = ('train', 'val')
_EVAL_STREAM = 2**32 - 1  # the counter that keys evaluation batches, apart from any training iteration
_EPOCH_STREAM = 2**32 - 2  # the counter that keys the permutation of each pass
ORDERS = ('epoch', 'random')


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

    def windows_before(self, iteration: int) -> int:
        """Training windows (rows) read before iteration: what a checkpoint records."""

    def eval_batch(self, split: str, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The index-th of the fixed evaluation batches of a split."""

    def byte_table(self) -> Optional[np.ndarray]:
        """Token id -> UTF-8 bytes, or None (no bits per byte)."""

    def source_names(self) -> list[str]:
        """The labels of the sources eval_targets' source ids index."""

    def eval_targets(self, split: str, index: int) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """(bytes, source id) of each target of an evaluation batch, or None."""


class TokenBatches:
    """(x, y) windows of block_size + 1 tokens from one dataset folder. meta: its meta.pkl, where the
    caller has read it already. order: 'epoch' or 'random' (see the module's docstring).
    micro_steps: global micro-steps per iteration (gradient_accumulation_steps), so that
    batch_size x micro_steps windows make one iteration."""

    def __init__(self, data_dir, batch_size, block_size, seed, device='cpu', vocab_size=None, meta=None,
                 order='epoch', micro_steps=1):
        if order not in ORDERS:
            raise UserError(f"data_order must be one of {', '.join(map(repr, ORDERS))}, got {order!r}")
        self.data_dir, self.batch_size, self.block_size, self.seed = data_dir, batch_size, block_size, seed
        self.order, self.micro_steps = order, micro_steps
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
        self.start_iter, self.first_window = 0, 0
        self._permutation = (None, None)  # ((split, pass), its permutation): the last one drawn
        self._byte_table, self._docs = None, {}

    def start(self, iteration, windows):
        """A resumed run: `windows` training windows were read before `iteration` (the checkpoint's
        count, which stays right across a change of batch_size or gradient_accumulation_steps)."""
        self.start_iter, self.first_window = iteration, windows

    def windows_before(self, iteration):
        """Training windows read before `iteration` (what a checkpoint at `iteration` records)."""
        return self.first_window + (iteration - self.start_iter) * self.micro_steps * self.batch_size

    def num_windows(self, split='train'):
        """The windows of one pass over a split (order 'epoch')."""
        return (self.num_tokens(split) - 1) // self.block_size

    def epochs(self, iteration):
        """Passes over the training split completed before `iteration` (a fraction; order 'epoch')."""
        return self.windows_before(iteration) / self.num_windows('train')

    def _memmap(self, split):
        return np.memmap(os.path.join(self.data_dir, f'{split}.bin'), dtype=self.dtype, mode='r')

    def num_tokens(self, split):
        return os.path.getsize(os.path.join(self.data_dir, f'{split}.bin')) // self.dtype.itemsize

    def _pass_order(self, split, epoch):
        key = (split, epoch)
        if self._permutation[0] != key:
            rng = np.random.Generator(np.random.Philox(key=self.seed, counter=[SPLITS.index(split), _EPOCH_STREAM, epoch, 0]))
            self._permutation = (key, rng.permutation(self.num_windows(split)))
        return self._permutation[1]

    def starts(self, split, iteration, micro_step):
        """The first token of each row of a training micro-batch."""
        if self.order == 'random':
            rng = np.random.Generator(np.random.Philox(key=self.seed, counter=[SPLITS.index(split), iteration, micro_step, 0]))
            return rng.integers(0, self.num_tokens(split) - self.block_size, size=self.batch_size)
        samples = self.windows_before(iteration) + micro_step * self.batch_size + np.arange(self.batch_size)
        n = self.num_windows(split)
        windows = np.empty(self.batch_size, dtype=np.int64)
        for epoch in np.unique(samples // n):  # a micro-batch may straddle two passes
            mine = samples // n == epoch
            windows[mine] = self._pass_order(split, int(epoch))[samples[mine] % n]
        return windows * self.block_size

    def eval_starts(self, split, index):
        """The first token of each row of the index-th evaluation batch: the training split's at
        random offsets, the validation split's window after window from its beginning (wrapping
        around a split shorter than the evaluation)."""
        if split == 'train':
            rng = np.random.Generator(np.random.Philox(key=self.seed, counter=[SPLITS.index(split), _EVAL_STREAM, index, 0]))
            return rng.integers(0, self.num_tokens(split) - self.block_size, size=self.batch_size)
        windows = index * self.batch_size + np.arange(self.batch_size)
        return (windows % self.num_windows(split)) * self.block_size

    def _read(self, split, starts):
        data = self._memmap(split)
        windows = np.stack([data[s:s + self.block_size + 1] for s in starts]).astype(np.int64)
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :-1]))
        y = torch.from_numpy(np.ascontiguousarray(windows[:, 1:]))
        return self._to_device(x), self._to_device(y)

    def _to_device(self, tensor):
        if self.device.type == 'cuda':  # pinned memory, so the copy overlaps with compute
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def batch(self, split, iteration, micro_step):
        """The micro-batch of global micro-step `micro_step` of iteration `iteration`: a pure
        function of (seed, split, iteration, micro_step) and the run's window count at its start."""
        return self._read(split, self.starts(split, iteration, micro_step))

    def eval_batch(self, split, index):
        """The index-th of the fixed evaluation batches of a split."""
        return self._read(split, self.eval_starts(split, index))

    # bits per byte: what the targets of an evaluation batch are as text

    def byte_table(self):
        """token id -> UTF-8 bytes it decodes to (the dataset's token_bytes.npy, 0 for special
        tokens), or None for a dataset prepared without byte accounting."""
        if self._byte_table is None:
            path = os.path.join(self.data_dir, self.meta.get('token_bytes') or 'token_bytes.npy')
            if not os.path.isfile(path):
                return None
            self._byte_table = np.load(path)
        return self._byte_table

    def source_names(self):
        """The dataset's source labels (meta['sources']), or ['all'] where it has none recorded."""
        return list(self.meta.get('sources') or ['all'])

    def eval_targets(self, split, index):
        """(bytes, source) of each target token of the index-th evaluation batch, (batch_size,
        block_size) int64 tensors on the device: the UTF-8 bytes the target decodes to and the index
        into source_names() of its document; None without a byte table."""
        table = self.byte_table()
        if table is None:
            return None
        starts = self.eval_starts(split, index)
        positions = starts[:, None] + 1 + np.arange(self.block_size)[None, :]  # the targets' offsets in .bin
        data = self._memmap(split)
        ids = np.stack([data[s + 1:s + self.block_size + 1] for s in starts]).astype(np.int64)
        nbytes = table[ids].astype(np.int64)
        if split not in self._docs:
            path = os.path.join(self.data_dir, (self.meta.get('docs') or {}).get(split, f'{split}.docs.npy'))
            self._docs[split] = np.load(path) if os.path.isfile(path) else None
        docs = self._docs[split]
        if docs is None or len(docs) == 0:
            source = np.zeros_like(positions)
        else:
            row = np.clip(np.searchsorted(docs[:, 0], positions, side='right') - 1, 0, len(docs) - 1)
            source = docs[row, 2]
        return self._to_device(torch.from_numpy(nbytes)), self._to_device(torch.from_numpy(source.astype(np.int64)))
