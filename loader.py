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

Evaluation reads a fixed set of batches, the same at every evaluation:
- the training split's: eval_iters batches at random offsets drawn from the run's seed;
- the validation split's: a sample of min(eval_iters x batch_size, windows of the split) distinct
  windows (the non-overlapping windows of the training order), drawn from a seeded permutation of the
  split's windows with a key of its own: spread over the whole split (a split may be ordered by
  source), the same windows for every run seed and every number of ranks, each window counted once.
  A sample of fewer windows than the evaluation asks for is read in fewer batches, the last one
  padded with rows that count zero (eval_batch says how many rows count). Two datasets of the same
  documents under different tokenizers are each scored on an unbiased sample of the same split;
  eval_bpb.py scores the very same documents whole.
The memmap is opened per batch: a long-lived np.memmap grows the process's memory (nanoGPT's fix).
"""

import os
import pickle
import re
from typing import Optional, Protocol

import numpy as np
import torch

from configurator import UserError

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
SPLITS = ('train', 'val')
_EVAL_STREAM = 2**32 - 1  # the counter that keys evaluation batches, apart from any training iteration
_EPOCH_STREAM = 2**32 - 2  # the counter that keys the permutation of each pass
_VAL_SAMPLE_KEY = 20250101  # the validation sample's key: not the run's seed, so every run scores the same windows
ORDERS = ('epoch', 'random')
SAMPLE_TOKENS, SAMPLE_CHUNKS = 1 << 21, 32  # check_token_ids reads at most 2M tokens of a split, in 32 chunks


def _in_repo_prepare(data_dir):
    """'data/NAME/prepare.py' where data_dir is the repository's data/NAME folder holding that script, else None."""
    name = os.path.basename(os.path.normpath(data_dir))
    own = os.path.join(REPO_DIR, 'data', name)
    if os.path.realpath(data_dir) == os.path.realpath(own) and os.path.isfile(os.path.join(own, 'prepare.py')):
        return f"data/{name}/prepare.py"
    return None


def prepare_again(data_dir):
    """What to do about a dataset folder whose files are wrong or missing: run the prepare.py that
    writes it, the folder's own under data/, or one of them with --out_dir for a folder elsewhere."""
    script = _in_repo_prepare(data_dir)
    return (f"run the dataset's prepare.py again (python {script})" if script else
            f"run the dataset's prepare.py again with --out_dir={data_dir}")


def resolve_dataset(dataset):
    """The folder of a dataset: a name under data/, or a path to any folder with the three files."""
    candidates = [dataset] if os.sep in dataset or dataset.startswith('.') else []
    candidates += [os.path.join(REPO_DIR, 'data', dataset), dataset]
    for path in candidates:
        if os.path.isdir(path):
            missing = [f for f in ('train.bin', 'val.bin', 'meta.pkl') if not os.path.isfile(os.path.join(path, f))]
            if missing:
                script = _in_repo_prepare(path)
                if script:
                    raise UserError(f"dataset folder '{path}' lacks {', '.join(missing)}: run its prepare.py "
                                    f"(python {script})")
                # a folder outside data/ has no prepare.py of its own: one of data/*/prepare.py writes it
                raise UserError(f"dataset folder '{path}' lacks {', '.join(missing)}: run its prepare.py with "
                                f"--out_dir={path} (python data/<dataset>/prepare.py --out_dir={path}), or give a "
                                f"folder that holds train.bin, val.bin and meta.pkl")
            return path
    raise UserError(f"dataset '{dataset}' not found: expected data/{dataset}/ or a folder holding "
                    f"train.bin, val.bin and meta.pkl")


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain values only: dict, list, tuple, str, int, float, bool, None, and bytes and sets
    from protocols 3 and 4 on (what dataprep.write_dataset and nanoGPT's prepare scripts write: pickle
    has an opcode for each). Any other object is built by calling a global the file names, and such a
    call is how a pickle runs code: every global is refused before it is looked up."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name}")


def load_meta(data_dir):
    """A dataset's meta.pkl: a dict of plain values (_PlainUnpickler), with vocab_size. UserError for a
    file that is unreadable, that holds anything else (loading it is refused before any of its code
    could run), or that is not a dataset's."""
    path = os.path.join(data_dir, 'meta.pkl')
    try:
        with open(path, 'rb') as f:
            meta = _PlainUnpickler(f).load()
    except pickle.UnpicklingError as e:
        found = re.fullmatch(r'global (\S+)', str(e))
        if found is None:
            raise UserError(f"{path} is unreadable or not a dataset's meta.pkl: {prepare_again(data_dir)}") from None
        raise UserError(f"{path} is not a dataset's meta.pkl: it holds a Python object no meta.pkl holds "
                        f"({found.group(1)}); it was not loaded, since loading it could run code from the file: "
                        f"{prepare_again(data_dir)}") from None
    except Exception:
        raise UserError(f"{path} is unreadable or not a dataset's meta.pkl: {prepare_again(data_dir)}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get('vocab_size'), int):
        raise UserError(f"{path} is not a dataset's meta.pkl (a dict with vocab_size): {prepare_again(data_dir)}")
    return meta


def check_vocabulary(data_dir, dataset_vocab, model_vocab, checkpoint_dataset=None):
    """The dataset-vs-model vocabulary rule: a model reads a dataset whose ids all fit its vocabulary,
    model_vocab >= dataset_vocab (a model may pad its vocabulary past the dataset's, as 50257 -> 50304
    for GPT-2; the padding ids never occur in the data). UserError otherwise, saying what to change:
    checkpoint_dataset None = a new model, whose vocab_size can be set; else the model is a
    checkpoint's (resume, evaluation, sampling), its vocabulary fixed, and checkpoint_dataset is the
    dataset its run trained on (its config's), the one to use ('' where the checkpoint names none)."""
    if dataset_vocab <= model_vocab:
        return
    what = f"dataset '{data_dir}' has token ids up to {dataset_vocab - 1}"
    if checkpoint_dataset is None:
        raise UserError(f"{what} but the model's vocab_size is {model_vocab}: set vocab_size >= {dataset_vocab} "
                        f"(or leave it unset to take the dataset's)")
    fixed = f"{what} but the checkpoint's model has a vocabulary of {model_vocab}, which the checkpoint fixes"
    if not checkpoint_dataset:
        raise UserError(f"{fixed}: use a dataset of the run's tokenizer (--dataset=FOLDER)")
    try:
        own = os.path.realpath(resolve_dataset(checkpoint_dataset)) == os.path.realpath(data_dir)
    except UserError:
        own = False
    if own:  # the run's own dataset, prepared again since with another tokenizer
        raise UserError(f"{fixed}: the dataset was prepared again with another tokenizer since the run trained on it; "
                        f"prepare it again with the run's tokenizer")
    raise UserError(f"{fixed}: use a dataset of the run's tokenizer, such as its own (--dataset={checkpoint_dataset})")


def check_token_ids(data_dir, meta, splits=SPLITS, sample_tokens=SAMPLE_TOKENS, chunks=SAMPLE_CHUNKS):
    """The .bin files against meta.pkl, when a dataset is opened: each split is a whole number of
    tokens of meta['dtype'], and every id read is below meta['vocab_size']. A .bin from another
    preparation (another tokenizer, another dtype) fails here in one line, not in the embedding at the
    first step. Reads a split of up to sample_tokens whole, a larger one as `chunks` evenly spaced
    chunks of sample_tokens in all (first and last included): a bounded cost on any size of file.
    dataprep.write_dataset checks every id as it writes them."""
    remedy = f"run the dataset's prepare.py again (python data/{os.path.basename(os.path.normpath(data_dir))}/prepare.py)"
    name = str(meta.get('dtype', 'uint16'))
    if name not in ('uint8', 'uint16', 'uint32', 'uint64'):
        raise UserError(f"{data_dir}/meta.pkl's dtype {name!r} is not an unsigned integer type: {remedy}")
    dtype = np.dtype(name)
    for split in splits:
        path = os.path.join(data_dir, f'{split}.bin')
        size = os.path.getsize(path)
        if size % dtype.itemsize:
            raise UserError(f"{path} is {size:,} bytes, not a whole number of {dtype.name} tokens (meta.pkl's dtype): "
                            f"the files are from different preparations; {remedy}")
        data = np.memmap(path, dtype=dtype, mode='r') if size else np.empty(0, dtype)
        if len(data) <= sample_tokens:
            largest = int(data.max(initial=0))
        else:
            length = sample_tokens // chunks
            starts = np.linspace(0, len(data) - length, chunks).astype(np.int64)
            largest = max(int(data[s:s + length].max()) for s in starts)
        if largest >= meta['vocab_size']:
            raise UserError(f"{path} holds token id {largest:,} (read as {dtype.name}) but meta.pkl's vocab_size is "
                            f"{meta['vocab_size']:,}: the files are from different preparations; {remedy}")


class Batches(Protocol):
    """What train.py reads its batches from: TokenBatches here, bench.py's SyntheticBatches."""

    def batch(self, split: str, iteration: int, micro_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of global micro-step micro_step of an iteration, on the training device."""

    def windows_before(self, iteration: int) -> int:
        """Training windows (rows) read before iteration: what a checkpoint records."""

    def eval_batches(self, split: str) -> int:
        """How many evaluation batches a split has."""

    def eval_batch(self, split: str, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(x, y, rows) of the index-th of the fixed evaluation batches of a split: only the first
        rows rows count (the last validation batch of a small split is padded)."""

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
    batch_size x micro_steps windows make one iteration. eval_iters: the batches an evaluation asks
    for of each split (the validation split may have fewer windows)."""

    def __init__(self, data_dir, batch_size, block_size, seed, device='cpu', vocab_size=None, meta=None,
                 order='epoch', micro_steps=1, eval_iters=1):
        if order not in ORDERS:
            raise UserError(f"data_order must be one of {', '.join(map(repr, ORDERS))}, got {order!r}")
        self.data_dir, self.batch_size, self.block_size, self.seed = data_dir, batch_size, block_size, seed
        self.order, self.micro_steps, self.eval_iters = order, micro_steps, eval_iters
        self.device = torch.device(device)
        self.meta = meta if meta is not None else load_meta(data_dir)
        check_token_ids(data_dir, self.meta)
        self.dtype = np.dtype(self.meta.get('dtype', 'uint16'))
        for split in SPLITS:
            n = self.num_tokens(split)
            if n < block_size + 1:
                raise UserError(f"{data_dir}/{split}.bin holds {n} tokens, fewer than block_size + 1 = "
                                f"{block_size + 1}: lower block_size or prepare more data")
        if vocab_size is not None:
            check_vocabulary(data_dir, self.meta['vocab_size'], vocab_size)
        self.start_iter, self.first_window = 0, 0
        self._permutation = (None, None)  # ((split, pass), its permutation): the last one drawn
        self._val_sample = None
        # the byte files, read and checked against meta.pkl now: a stale one fails here, not at the first evaluation
        self._byte_table = token_byte_table(data_dir, self.meta)
        self._val_docs = document_index(data_dir, self.meta, 'val', self.num_tokens('val')) if self._byte_table is not None else None

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

    def val_sample(self):
        """The validation windows an evaluation scores (their indices, ascending): the first
        min(eval_iters x batch_size, windows) of a permutation of the split's windows keyed by a
        constant, so the same for every run seed; a smaller evaluation's sample is part of a larger one's."""
        if self._val_sample is None:
            n = self.num_windows('val')
            rng = np.random.Generator(np.random.Philox(key=_VAL_SAMPLE_KEY, counter=[SPLITS.index('val'), _EVAL_STREAM, 0, 0]))
            self._val_sample = np.sort(rng.permutation(n)[:min(n, self.eval_iters * self.batch_size)])
        return self._val_sample

    def eval_batches(self, split):
        """Evaluation batches of a split: eval_iters, or fewer where the validation split has fewer windows."""
        return self.eval_iters if split == 'train' else -(-len(self.val_sample()) // self.batch_size)

    def eval_starts(self, split, index):
        """(first token of each row, rows that count) of the index-th evaluation batch: the training
        split's at random offsets from the run's seed, the validation split's from its sample (the
        module's docstring), the last batch padded with the sample's first window, counting zero."""
        if split == 'train':
            rng = np.random.Generator(np.random.Philox(key=self.seed, counter=[SPLITS.index(split), _EVAL_STREAM, index, 0]))
            return rng.integers(0, self.num_tokens(split) - self.block_size, size=self.batch_size), self.batch_size
        windows = self.val_sample()[index * self.batch_size:(index + 1) * self.batch_size]
        if not 0 < len(windows):
            raise IndexError(f"evaluation batch {index} of {self.eval_batches(split)}")
        rows = len(windows)
        windows = np.concatenate([windows, np.full(self.batch_size - rows, windows[0])])
        return windows * self.block_size, rows

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
        """(x, y, rows): the index-th of the fixed evaluation batches of a split, of which the first rows count."""
        starts, rows = self.eval_starts(split, index)
        return (*self._read(split, starts), rows)

    # bits per byte: what the targets of an evaluation batch are as text

    def byte_table(self):
        """token id -> UTF-8 bytes it decodes to (token_byte_table), or None: no bits per byte."""
        return self._byte_table

    def source_names(self):
        """The labels of the sources eval_targets' source ids index: meta['sources'] where the
        validation split has a document index to attribute text with, else ['all']."""
        return list(self.meta['sources']) if self._val_docs is not None and self.meta.get('sources') else ['all']

    def eval_targets(self, split, index):
        """(bytes, source) of each target token of the index-th validation batch, (batch_size,
        block_size) int64 tensors on the device: the UTF-8 bytes the target decodes to and the index
        into source_names() of its document; None without a byte table."""
        assert split == 'val', "bits per byte are of the validation split"
        if self._byte_table is None:
            return None
        starts, _ = self.eval_starts(split, index)
        ids = np.stack([self._memmap(split)[s + 1:s + self.block_size + 1] for s in starts]).astype(np.int64)
        nbytes = self._byte_table[ids].astype(np.int64)
        if self._val_docs is None or len(self.source_names()) == 1:
            source = np.zeros_like(ids)
        else:
            positions = starts[:, None] + 1 + np.arange(self.block_size)[None, :]  # the targets' offsets in .bin
            row = np.searchsorted(self._val_docs[:, 0], positions, side='right') - 1
            source = self._val_docs[row, 2]
        return self._to_device(torch.from_numpy(nbytes)), self._to_device(torch.from_numpy(source.astype(np.int64)))


# -----------------------------------------------------------------------------
# the byte files of a dataset (prepare.py writes them; meta.pkl names them): bits per byte and sources

def token_byte_table(data_dir, meta):
    """token id -> the UTF-8 bytes it decodes to, 0 for special tokens (the file meta['token_bytes']
    names, one entry per id of the dataset's vocabulary), or None for a dataset whose meta.pkl names
    none (prepared without byte accounting). Only the file meta.pkl names is read."""
    name = meta.get('token_bytes')
    if not name:
        return None
    path = os.path.join(data_dir, name)
    try:
        table = np.load(path)
    except (OSError, ValueError):
        raise UserError(f"{path}, which {data_dir}/meta.pkl names, is missing or unreadable: run the dataset's "
                        f"prepare.py again") from None
    if table.ndim != 1 or len(table) != meta['vocab_size']:
        raise UserError(f"{path} has {len(table)} entries, not one per id of meta.pkl's vocabulary "
                        f"({meta['vocab_size']}): the files are from different preparations; run prepare.py again")
    return table


def document_index(data_dir, meta, split, num_tokens):
    """The documents of a split, an (n, 3) int64 array of [first token, tokens, source id] (the file
    meta['docs'][split] names), or None where meta.pkl names none. Checked against meta.pkl and the
    split's token count: the documents tile the split as dataprep.write_dataset writes them (the first
    begins at token 0, each has at least one token, its end-of-document id, and begins where the one
    before ends; the last ends at the split's end), and each source id is one of meta['sources']. A
    stale or damaged index is an error, never a wrong attribution."""
    name = (meta.get('docs') or {}).get(split)
    if not name:
        return None
    path = os.path.join(data_dir, name)
    stale = f": the files are from different preparations or damaged; {prepare_again(data_dir)}"
    try:
        docs = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        raise UserError(f"{path}, which {data_dir}/meta.pkl names, is missing or unreadable{stale}") from None
    if docs.ndim != 2 or docs.shape[1] != 3 or len(docs) == 0 or docs.dtype.kind not in 'iu':
        raise UserError(f"{path} is not a document index (expected integer rows of [start, tokens, source]){stale}")
    docs = docs.astype(np.int64, copy=False)
    starts, lengths = docs[:, 0], docs[:, 1]
    ends = starts + lengths
    empty = np.flatnonzero(lengths < 1)
    if len(empty):
        i = int(empty[0])
        raise UserError(f"{path}: document {i} has {int(lengths[i])} tokens, but every document holds at least "
                        f"its end-of-document token{stale}")
    outside = np.flatnonzero((starts < 0) | (ends > num_tokens))
    if len(outside):
        i = int(outside[0])
        raise UserError(f"{path}: document {i} spans tokens {int(starts[i]):,} to {int(ends[i]):,}, past the end "
                        f"of {split}.bin ({num_tokens:,} tokens){stale}")
    if starts[0] != 0:
        raise UserError(f"{path}: document 0 begins at token {int(starts[0]):,}, not at the start of {split}.bin{stale}")
    gaps = np.flatnonzero(starts[1:] != ends[:-1])
    if len(gaps):
        i = int(gaps[0]) + 1
        raise UserError(f"{path}: document {i} begins at token {int(starts[i]):,}, not where document {i - 1} "
                        f"ends ({int(ends[i - 1]):,}){stale}")
    if int(ends[-1]) != num_tokens:
        raise UserError(f"{path} covers {int(ends[-1]):,} tokens, {split}.bin holds {num_tokens:,}{stale}")
    sources = meta.get('sources') or []
    if docs[:, 2].min() < 0 or docs[:, 2].max() >= max(1, len(sources)):
        raise UserError(f"{path} names source {int(docs[:, 2].max())} but meta.pkl lists "
                        f"{len(sources)} source(s){stale}")
    return docs
