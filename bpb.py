"""
Bits per byte: the number that compares models whose tokenizers differ (a token is not the same amount
of text for Llama-2's 32,000 pieces and GPT-2's 50,257). Defined here once; eval_bpb.py (documents
scored whole), eval_downstream.py and train.py's evaluation (its validation windows) all count with it.

Definition. Over the scored target tokens t,

    bpb = sum of -ln p(t | its context)  /  (ln 2 x sum of bytes(t))

where bytes(t) is the number of UTF-8 bytes token t decodes to on its own (the dataset's token byte
table, token_bytes.npy, written by its prepare.py and read by loader.token_byte_table), and a token
with 0 bytes (end of document, BOS: the special tokens) is left out of both sums. For the byte-level
tokenizers (GPT-2's tiktoken, byte-level BPE, bytes) the bytes of a document's tokens add up to the
UTF-8 bytes of its text exactly, so bpb is per byte of the text itself; SentencePiece's dummy prefix
adds one byte (a space) per document. A model whose vocabulary is padded past the dataset's (GPT-2's
50257 -> 50304) is scored the same way: its padding ids never occur as targets.

The sums: a (sources, 3) float64 tensor of nats, bytes and tokens of the scored targets of each
source (zeros, accumulate); summed across ranks with one all_reduce, turned into numbers by
summary (train.py's evaluation record) or entry (eval_bpb.py's result).

Documents scored whole (bits_per_byte): a document is scored as the model saw it in training: its
targets are the tokens of its span in {split}.bin, predicted from the token before the span (the
previous document's end-of-document token, or its own BOS) onwards. A document longer than block_size
is scored in windows that advance by half a block: every target after the first window has at least
block_size / 2 tokens of context. The documents: all of the split's (max_docs=0) or a seeded sample of
max_docs of them, the same indices for any tokenizer, so two datasets prepared from the same
documents are scored on the same text (the byte total shows it).
"""

import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from configurator import UserError
from runlog import shown_path

NATS, BYTES, TOKENS = 0, 1, 2  # the columns of the sums
SPLITS = ('train', 'val')


# ----------------------------------------------------------------------------- the sums

def zeros(num_sources, device='cpu'):
    """Empty sums: a (num_sources, 3) float64 tensor, per source the nats, bytes and tokens of the
    scored targets (columns NATS, BYTES, TOKENS). Ranks add theirs with all_reduce (a sum)."""
    return torch.zeros(num_sources, 3, dtype=torch.float64, device=device)


def accumulate(sums, nll, nbytes, source=None):
    """Add targets to sums, in place: nll their -ln p(target) in nats, nbytes the UTF-8 bytes each
    decodes to (the token byte table's entry), source the index of each one's source (None: all 0),
    tensors of one shape on sums' device. Targets of 0 bytes are left out of all three sums."""
    nll, nbytes = nll.reshape(-1), nbytes.reshape(-1)
    counted = nbytes > 0
    rows = torch.stack([nll[counted].double(), nbytes[counted].double(),
                        torch.ones_like(nbytes[counted], dtype=torch.float64)], dim=1)
    index = torch.zeros_like(nbytes[counted]) if source is None else source.reshape(-1)[counted]
    sums.index_add_(0, index.long(), rows)
    return sums


def bits_per_byte_of(nats, nbytes):
    """nats / (ln 2 x bytes), or None for no bytes."""
    return nats / (math.log(2) * nbytes) if nbytes else None


def summary(sums, names):
    """train.py's evaluation fields from the (all-reduced) sums of the sources named by names:
    {'val_bpb': bits per byte of all sources (None without bytes), 'val_bytes': their bytes,
    'val_bpb_sources': {name: bits per byte} of the sources with bytes where there are several
    sources, else None}."""
    rows = sums.tolist()
    nats, nbytes = sum(r[NATS] for r in rows), sum(r[BYTES] for r in rows)
    sources = {name: bits_per_byte_of(r[NATS], r[BYTES]) for name, r in zip(names, rows) if r[BYTES]}
    return {'val_bpb': bits_per_byte_of(nats, nbytes), 'val_bytes': int(nbytes),
            'val_bpb_sources': sources if len(names) > 1 else None}


def entry(row, documents):
    """eval_bpb.py's numbers of one row of the sums (or their total) over documents documents."""
    nats, nbytes, tokens = row[NATS], int(row[BYTES]), int(row[TOKENS])
    return dict(documents=documents, tokens=tokens, bytes=nbytes, nll_nats=nats, bpb=bits_per_byte_of(nats, nbytes),
                loss_per_token=nats / tokens if tokens else None, bytes_per_token=nbytes / tokens if tokens else None)


# ----------------------------------------------------------------------------- documents scored whole

def check_options(split, max_docs):
    """UserError for a split or document count bits_per_byte cannot score."""
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    if max_docs < 0:
        raise UserError(f"max_docs is a number of documents (0 = all of them), got {max_docs}")


def dataset_files(data_dir, split):
    """(meta, tokens, documents, token byte table) of a split: its .bin as a memmap and the byte files
    meta.pkl names (loader.py reads and checks them). UserError where the dataset has none."""
    from loader import check_token_ids, document_index, load_meta, token_byte_table
    meta = load_meta(data_dir)
    path = os.path.join(data_dir, f'{split}.bin')
    if not os.path.isfile(path):
        raise UserError(f"{data_dir} lacks {split}.bin: prepare the dataset again with its prepare.py")
    check_token_ids(data_dir, meta, splits=(split,))
    tokens = np.memmap(path, dtype=meta.get('dtype', 'uint16'), mode='r')
    table = token_byte_table(data_dir, meta)
    docs = document_index(data_dir, meta, split, len(tokens)) if table is not None else None
    if docs is None:
        raise UserError(f"{data_dir}/meta.pkl names no token byte table or no {split} document index: prepare the "
                        f"dataset again with its prepare.py (bits per byte needs the document index and token "
                        f"byte counts)")
    return meta, tokens, docs, table


def windows_of(targets, block_size):
    """The forward passes document_nll makes for a document of this many targets."""
    if targets <= block_size:
        return 1 if targets > 0 else 0
    return 1 + math.ceil((targets - block_size) / max(1, block_size // 2))


def duration(seconds):
    """'45s', '3m07s', '2h05m'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """How far a long loop over items (documents) is, counted in work (windows, the forward passes,
    which take the time): tqdm's bar where stderr is a terminal; elsewhere (a log file, a pipe, a
    job's output) a line on stdout, with the script's other lines, at each tenth of the work and at
    least every every_seconds: the items and the work done out of all, the time so far and an
    estimate of the rest."""
    every_seconds = 30.0

    def __init__(self, name, items, work, item_unit='documents', work_unit='windows'):
        self.name, self.items, self.work, self.item_unit, self.work_unit = name, items, work, item_unit, work_unit
        self.items_done = self.work_done = 0
        self.start = self.last = time.time()
        self.next_tenth = 1
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=work, desc=name, unit=f' {work_unit}', dynamic_ncols=True, file=sys.stderr)

    def update(self, work, items=1):
        self.items_done += items
        self.work_done += work
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.items_done:,}/{self.items:,} {self.item_unit}", refresh=False)
            self.bar.update(work)
            return
        now, fraction = time.time(), self.work_done / self.work if self.work else 1.0
        if fraction * 10 + 1e-9 >= self.next_tenth or now - self.last >= self.every_seconds:
            self.next_tenth = math.floor(fraction * 10 + 1e-9) + 1
            self.last = now
            elapsed = now - self.start
            left = f", about {duration(elapsed / fraction - elapsed)} left" if 0 < fraction < 1 else ''
            print(f"{self.name}: {self.items_done:,}/{self.items:,} {self.item_unit}, {self.work_done:,}/{self.work:,} "
                  f"{self.work_unit} ({math.floor(100 * fraction)}%), {duration(elapsed)} elapsed{left}", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def document_nll(model, seq, block_size, device, autocast):
    """-ln p(seq[i] | seq[:i]) for i = 1 .. len(seq) - 1, as a float64 CPU tensor: seq[0] is context
    only. Windows of block_size tokens; after the first, each advances by half a block and scores
    only its new targets."""
    n = len(seq) - 1
    out = torch.empty(n, dtype=torch.float64)
    done = 0
    while done < n:
        end = min(n, block_size if done == 0 else done + max(1, block_size // 2))
        lo = max(0, end - block_size)  # inputs seq[lo:end] predict seq[lo + 1:end + 1]
        x = seq[lo:end].to(device)[None]
        y = seq[lo + 1:end + 1].to(device)
        with torch.no_grad(), autocast:
            logits, _ = model(x)
        nll = F.cross_entropy(logits[0].float(), y, reduction='none')
        out[done:end] = nll[done - lo:].double().cpu()
        done = end
    return out


def bits_per_byte(model, data_dir, split, max_docs, seed, device, autocast):
    """Score the chosen documents of data_dir's split whole (the module's docstring): a dict with
    'overall' and 'per_source' entries (documents, tokens, bytes, nll_nats, bpb, loss_per_token,
    bytes_per_token) and what was scored. The caller has checked the model's vocabulary against the
    dataset's (loader.check_vocabulary)."""
    check_options(split, max_docs)
    meta, tokens, docs, token_bytes = dataset_files(data_dir, split)
    chosen = np.arange(len(docs))
    if max_docs and max_docs < len(docs):
        chosen = np.sort(np.random.default_rng(seed).choice(len(docs), size=max_docs, replace=False))
    sources = list(meta.get('sources') or ['all'])  # document_index has checked the ids against them
    context = meta.get('eos_id') if meta.get('eos_id') is not None else meta.get('bos_id')
    sums, documents = zeros(len(sources)), np.zeros(len(sources), dtype=np.int64)
    block_size = model.config.block_size
    lengths = docs[chosen, 1]  # the targets of each document
    windows = [windows_of(int(n), block_size) for n in lengths]
    print(f"scoring {len(chosen):,} {split} documents ({int(lengths.sum()):,} tokens, {sum(windows):,} windows of up "
          f"to {block_size}) on {device}", flush=True)
    t0 = time.time()
    progress = Progress(split, len(chosen), sum(windows))
    for i, work in zip(chosen, windows):
        start, length, source = (int(v) for v in docs[i])
        before = int(tokens[start - 1]) if start > 0 else context
        seq = torch.from_numpy(np.concatenate(([before], tokens[start:start + length])).astype(np.int64))
        nll = document_nll(model, seq, block_size, device, autocast)
        nbytes = torch.from_numpy(token_bytes[seq[1:].numpy()].astype(np.int64))
        accumulate(sums, nll, nbytes, torch.full_like(nbytes, source))
        documents[source] += 1
        progress.update(work)
    progress.close()
    rows = sums.tolist()
    per_source = {name: entry(rows[s], int(documents[s])) for s, name in enumerate(sources) if documents[s]}
    tokenizer = meta.get('tokenizer')
    if isinstance(tokenizer, dict) and 'name' in tokenizer:
        tokenizer = dict(tokenizer, name=shown_path(tokenizer['name']))
    return dict(split=split, dataset=shown_path(os.path.abspath(data_dir)), documents_chosen=len(chosen),
                max_docs=max_docs, seed=seed, tokenizer=tokenizer, seconds=round(time.time() - t0, 1),
                overall=entry(sums.sum(dim=0).tolist(), int(documents.sum())),
                per_source=dict(sorted(per_source.items())) if len(sources) > 1 else {})


def write_json(path, data):
    """A result file (eval_bpb.py's, eval_downstream.py's) written whole or not at all: a .tmp file,
    then os.replace."""
    import json
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(path + '.tmp', path)
