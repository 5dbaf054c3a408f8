"""
What the data/<name>/prepare.py scripts share: read documents, tokenize them in parallel, write
train.bin and val.bin (flat uint16 token ids), their document indexes train.docs.npy and val.docs.npy,
the vocabulary's byte table token_bytes.npy, and meta.pkl.

    python data/slimpajama_6b_llama/prepare.py                                  # from the Hugging Face hub
    python data/slimpajama_6b_llama/prepare.py --input shards/ --tokenizer ~/llama-2-tokenizer
    python dataprep.py bench --kind hf --tokenizer ~/llama-2-tokenizer --input shard.jsonl.zst

A dataset script declares only what differs (a Recipe): where its documents come from when no
--input is given (and, for a dataset with its own file format, what --input reads: input_source), its
tokenizer, and whether documents begin with BOS. A Source may add entries to meta.pkl (extra_meta: a
collection's record, as data/english_mix's archive header). Every document ends with the
tokenizer's end-of-document id. Each .bin (and .npy) is written as <name>.tmp and renamed once
complete; meta.pkl is written last, so an interrupted run never leaves a folder that looks prepared.

Byte accounting, so that models with different tokenizers can be compared in bits per byte:
- each document has a source label (--source_field, a dotted path into its record, such as SlimPajama's
  'meta.redpajama_set_name'; 'unknown' where a record has none, or the dataset's one source name);
- meta['stats'][split][source name or 'all'] counts its documents, tokens, UTF-8 bytes and characters
  (see write_dataset);
- {split}.docs.npy: int64 rows [start offset in {split}.bin, number of tokens, source id], one a
  document in .bin order (source id: an index into meta['sources']); the .bin format is unchanged;
- token_bytes.npy: the UTF-8 bytes each token id decodes to on its own (see token_bytes), so that
  sum(token_bytes[ids]) is the text's byte count.

The tokenizers are tokenizer.py's (load_tokenizer, token_bytes); sample.py and export_hf.py decode with them too.
"""

import argparse
import collections
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
from typing import Callable, Iterable, Optional

import numpy as np

from configurator import UserError
from tokenizer import (TOKENIZER_KINDS, _first_line, load_tokenizer, portable_spec, replace_lone_surrogates,
                       token_bytes)

DTYPE = np.uint16
MAX_VOCAB = int(np.iinfo(DTYPE).max) + 1  # ids 0..65535 fit in uint16
SPLITS = ('train', 'val')
INPUT_SUFFIXES = ('.jsonl', '.jsonl.zst', '.parquet')
DEFAULT_VAL_FRACTION = 0.005
BATCH_CHARS = 1 << 20  # text per worker task: large enough to amortize the pickling, small enough to stream
BATCH_DOCS = 4096
TOKEN_BYTES_FILE = 'token_bytes.npy'


# ----------------------------------------------------------------------------------------------
# Sources: where documents come from, streamed as (split, text) or (split, text, source label)

UNKNOWN_SOURCE = 'unknown'  # the source label of a document whose record has none


@dataclasses.dataclass
class Source:
    description: str                         # meta['source']
    split_names: dict                        # {'train': name in the source, 'val': ...}
    documents: Iterable                      # (split, text) or (split, text, label) tuples, streamed
    total: Optional[int] = None              # number of documents, when known (progress bar)
    default_label: str = UNKNOWN_SOURCE      # the label of a document given none (or None)
    extra_meta: dict = dataclasses.field(default_factory=dict)  # more meta.pkl entries (a collection's record)


def field_value(record, path):
    """The value at a dotted path ('meta.redpajama_set_name') of a record (nested dicts), as a str;
    None where the record has none."""
    value = record
    for key in path.split('.'):
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return str(value)


def expand_inputs(paths, flag):
    """Files named by --input / --val_input: files, or folders searched for supported files."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names
                           if f.endswith(INPUT_SUFFIXES))
            if not found:
                raise UserError(f"{flag} '{path}': folder holds no {', '.join(INPUT_SUFFIXES)} files")
            files += found
        elif os.path.exists(path):
            if not path.endswith(INPUT_SUFFIXES):
                raise UserError(f"{flag} '{path}': unsupported file type; expected {', '.join(INPUT_SUFFIXES)}")
            files.append(path)
        else:
            raise UserError(f"{flag} '{path}': no such file or folder")
    return files


def read_documents(path, source_field=None):
    """(text, source label) of each record of a .jsonl, .jsonl.zst or .parquet file, streamed: its
    `text` field, and the value at the dotted path source_field (None without one, or where the
    record has none)."""
    if path.endswith('.parquet'):
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise UserError(f"{path}: reading .parquet needs pyarrow: pip install pyarrow ({_first_line(e)})") from None
        parquet = pq.ParquetFile(path)
        if 'text' not in parquet.schema_arrow.names:
            raise UserError(f"{path}: no 'text' column (columns: {', '.join(parquet.schema_arrow.names)})")
        column = source_field.split('.')[0] if source_field else None  # a struct column holds the rest
        if column not in parquet.schema_arrow.names:
            column = None
        for batch in parquet.iter_batches(batch_size=1024, columns=['text'] + ([column] if column else [])):
            texts = batch.column('text').to_pylist()
            if column is None:
                yield from ((text, None) for text in texts)
            else:
                values = batch.column(column).to_pylist()
                yield from ((text, field_value({column: v}, source_field)) for text, v in zip(texts, values))
        return
    with open(path, 'rb') as raw:
        if path.endswith('.zst'):
            try:
                import zstandard
            except ImportError as e:
                raise UserError(f"{path}: reading .zst needs zstandard: pip install zstandard "
                                f"({_first_line(e)})") from None
            raw = zstandard.ZstdDecompressor().stream_reader(raw)
        for line_number, line in enumerate(io.TextIOWrapper(raw, encoding='utf-8'), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record['text']
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path} line {line_number}: not a JSON object with a 'text' field") from None
            yield text, (field_value(record, source_field) if source_field else None)


def held_out(index, fraction):
    """Whether document `index` goes to validation: a hash of the index, so the split is
    deterministic and independent of the documents' order in the shards."""
    digest = hashlib.blake2b(index.to_bytes(8, 'little'), digest_size=8).digest()
    return int.from_bytes(digest, 'little') < fraction * 2**64


def file_source(args):
    """--input (and --val_input, or a --val_fraction of --input's documents) from local files,
    each document labelled by its record's --source_field."""
    train_files = expand_inputs(args.input, '--input')
    val_files = expand_inputs(args.val_input, '--val_input') if args.val_input else []
    fraction = DEFAULT_VAL_FRACTION if args.val_fraction is None else args.val_fraction
    source_field = getattr(args, 'source_field', None)

    def texts(files):  # (text, label) pairs
        for n, document in enumerate(d for f in files for d in read_documents(f, source_field)):
            if n == args.max_docs:
                return
            yield document

    def documents():
        if val_files:
            yield from (('train', *d) for d in texts(train_files))
            yield from (('val', *d) for d in texts(val_files))
        else:
            for index, document in enumerate(texts(train_files)):
                yield ('val' if held_out(index, fraction) else 'train', *document)

    if val_files:
        names = {'train': '--input', 'val': '--val_input'}
    else:
        names = {'train': '--input, less the held-out documents',
                 'val': f'--input, documents held out by index hash (val_fraction={fraction})'}
    description = ', '.join(os.path.abspath(f) for f in train_files + val_files)
    return Source(description, names, documents())


def hf_source(dataset_id, split_names):
    """A Recipe's default source: a Hugging Face dataset with a `text` field. split_names maps
    'train' and 'val' to the dataset's splits. Not streamed by default: the download is cached, so the
    LLaMA and GPT-2 datasets share it, and the memory-mapped Arrow files keep memory bounded. With
    args.source_field, each document is labelled by that (dotted) field of its record."""

    def make(args):
        try:
            import datasets
        except ImportError as e:
            raise UserError(f"the Hugging Face dataset {dataset_id} needs the datasets package: pip install datasets "
                            f"({_first_line(e)}); or pass --input with local files") from None
        streaming = args.streaming or args.max_docs is not None  # a quick subset should not download 6B tokens
        splits = {}
        for split, name in split_names.items():
            try:
                splits[split] = datasets.load_dataset(dataset_id, split=name, streaming=streaming)
            except Exception as e:
                raise UserError(f"cannot load split '{name}' of the Hugging Face dataset {dataset_id} "
                                f"({_first_line(e)}); offline, pass --input (and --val_input) with local "
                                f".jsonl, .jsonl.zst or .parquet files that have a 'text' field") from None
        total = None
        if not streaming:
            total = sum(len(d) if args.max_docs is None else min(len(d), args.max_docs) for d in splits.values())

        source_field = getattr(args, 'source_field', None)
        column = source_field.split('.')[0] if source_field else None

        def documents():
            for split, dataset in splits.items():
                n = 0
                for batch in dataset.iter(batch_size=1000):
                    values = batch.get(column) if column else None
                    for i, text in enumerate(batch['text']):
                        if n == args.max_docs:
                            break
                        if column is None:
                            yield split, text
                        else:
                            yield split, text, (field_value({column: values[i]}, source_field) if values else None)
                        n += 1
                    if n == args.max_docs:
                        break
        return Source(dataset_id, dict(split_names), documents(), total)
    return make


# ----------------------------------------------------------------------------------------------
# The pipeline: batches of documents -> worker processes -> uint16 ids -> <split>.bin.tmp

_worker = {}  # the tokenizer and document boundaries of this process (inherited by fork, or loaded)


def _init_worker(spec, bos_id, eos_id, num_threads):
    if 'tokenizer' not in _worker:
        _worker['tokenizer'] = load_tokenizer(spec)
    _worker['tokenizer'].limit_threads(num_threads)
    _worker['bos_id'], _worker['eos_id'] = bos_id, eos_id


def _init_pool_worker(*args):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it terminates the pool
    _init_worker(*args)


def _text_size(text):
    """(UTF-8 bytes, characters) of a document's text as tokenized (lone surrogates as U+FFFD)."""
    try:
        return len(text.encode('utf-8')), len(text)
    except UnicodeEncodeError:
        text = replace_lone_surrogates(text)
        return len(text.encode('utf-8')), len(text)


def _tokenize(texts):
    """One batch of documents -> (their ids, each document with its boundaries, as one uint16 array;
    how many of the documents had lone surrogates replaced by U+FFFD; an int64 array of
    [tokens, UTF-8 bytes, characters] a document)."""
    docs, replaced = _worker['tokenizer'].encode_batch_counted(texts)
    bos, eos = _worker['bos_id'], _worker['eos_id']
    prefix = [] if bos is None else [bos]
    total = sum(map(len, docs)) + len(docs) * (1 + len(prefix))
    out = np.empty(total, dtype=DTYPE)
    pos = 0
    for ids in docs:
        n = len(ids) + len(prefix) + 1
        out[pos:pos + n] = prefix + list(ids) + [eos]
        pos += n
    sizes = np.array([(len(ids) + len(prefix) + 1, *_text_size(text)) for ids, text in zip(docs, texts)],
                     dtype=np.int64).reshape(-1, 3)
    return out, replaced, sizes


def _batches(documents, default_label, source_ids):
    """(split, texts, their source ids) batches of about BATCH_CHARS characters, in document order
    within each split. source_ids ({label: id}) gains each new label, numbered in order of appearance."""
    pending = {split: ([], []) for split in SPLITS}
    chars = dict.fromkeys(SPLITS, 0)
    for document in documents:
        split, text = document[:2]
        label = document[2] if len(document) > 2 and document[2] is not None else default_label
        if not isinstance(text, str):
            raise UserError(f"a document's text is {type(text).__name__}, not a string")
        if label not in source_ids:
            if label == 'all':
                raise UserError("a document's source is named 'all', the name of the total in meta['stats']")
            source_ids[label] = len(source_ids)
        pending[split][0].append(text)
        pending[split][1].append(source_ids[label])
        chars[split] += len(text)
        if chars[split] >= BATCH_CHARS or len(pending[split][0]) >= BATCH_DOCS:
            yield split, *pending[split]
            pending[split], chars[split] = ([], []), 0
    for split in SPLITS:
        if pending[split][0]:
            yield split, *pending[split]


class _Done:
    """apply_async's result for work done in this process (num_proc=1)."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


STAT_KEYS = ('documents', 'tokens', 'bytes', 'chars')


def _stats(totals, names):
    """meta['stats'] of one split from its {source id: [documents, tokens, bytes, chars]}."""
    stats = {names[sid]: dict(zip(STAT_KEYS, map(int, row))) for sid, row in sorted(totals.items())}
    stats['all'] = dict(zip(STAT_KEYS, map(int, sum(totals.values()))))
    return stats


def _save_npy(path, array):
    """array saved as path.tmp (renamed to path by the caller, with the .bin files)."""
    with open(path + '.tmp', 'wb') as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())


def write_dataset(out_dir, tokenizer, spec, bos, source, num_proc, progress=True):
    """Tokenize source's documents on num_proc processes into out_dir/{train,val}.bin, their document
    indexes {train,val}.docs.npy, token_bytes.npy and meta.pkl. Returns meta.

    meta['stats'][split][name] ({name} each source label with documents in the split, and 'all') is
    {'documents', 'tokens', 'bytes', 'chars'}: bytes and chars are the UTF-8 bytes and the characters
    of the documents' text as read (a lone surrogate counted as the U+FFFD that replaced it); tokens
    are every id written to {split}.bin for them: BOS (when the dataset has it), the text's tokens and
    the end-of-document id, so stats[split]['all']['tokens'] == len({split}.bin). BOS and EOS count 0
    in token_bytes.npy, so sum(token_bytes[{split}.bin]) is the text's bytes (for the exact kinds).
    Every id is checked against tokenizer.vocab_size as it is written (loader.check_token_ids, at
    training, reads only a sample): an id outside it is a UserError, and no meta.pkl is written."""
    bos_id = tokenizer.bos_id if bos else None
    if bos and bos_id is None:
        raise UserError(f"documents of this dataset begin with BOS, but tokenizer '{spec['name']}' has no bos_token")
    if tokenizer.vocab_size > MAX_VOCAB:
        raise UserError(f"tokenizer '{spec['name']}' has {tokenizer.vocab_size:,} ids; {DTYPE.__name__} holds at "
                        f"most {MAX_VOCAB:,}: use a tokenizer with a vocabulary of at most {MAX_VOCAB:,}")
    os.makedirs(out_dir, exist_ok=True)
    paths = {split: os.path.join(out_dir, f'{split}.bin') for split in SPLITS}
    docs_paths = {split: os.path.join(out_dir, f'{split}.docs.npy') for split in SPLITS}
    rows_paths = {split: os.path.join(out_dir, f'{split}.docs.rows.tmp') for split in SPLITS}  # raw int64 rows
    token_bytes_path = os.path.join(out_dir, TOKEN_BYTES_FILE)
    counts = {split: {'tokens': 0, 'documents': 0} for split in SPLITS}
    totals = {split: {} for split in SPLITS}  # {source id: [documents, tokens, bytes, chars]}
    source_ids = {}  # {label: id}, in order of first appearance
    replaced = 0  # documents whose lone surrogates became U+FFFD
    files, rows_files, pool = {}, {}, None
    from tqdm import tqdm
    bar = tqdm(total=source.total, unit=' docs', disable=not progress, dynamic_ncols=True)
    try:
        files = {split: open(paths[split] + '.tmp', 'wb') for split in SPLITS}
        rows_files = {split: open(rows_paths[split], 'wb') for split in SPLITS}
        init_args = (spec, bos_id, tokenizer.eos_id, 1)
        if num_proc > 1:
            # fork (where there is one) hands the workers the tokenizer already loaded: no hub requests per worker
            context = multiprocessing.get_context('fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn')
            if context.get_start_method() == 'fork':
                _worker['tokenizer'] = tokenizer
            pool = context.Pool(num_proc, initializer=_init_pool_worker, initargs=init_args)
            submit = lambda texts: pool.apply_async(_tokenize, (texts,))
        else:
            _worker['tokenizer'] = tokenizer
            _init_worker(*init_args)
            submit = lambda texts: _Done(_tokenize(texts))
        in_flight = collections.deque()  # bounded, so that reading never runs ahead of tokenizing

        def write_done(keep):
            nonlocal replaced
            while len(in_flight) > keep:
                split, doc_sources, result = in_flight.popleft()
                ids, n_replaced, sizes = result.get()  # sizes: [tokens, bytes, chars] a document
                if ids.max() >= tokenizer.vocab_size:
                    raise UserError(f"tokenizer '{spec['name']}' gave token id {int(ids.max()):,}, beyond its "
                                    f"vocab_size of {tokenizer.vocab_size:,}: no dataset was written; use a tokenizer "
                                    f"whose ids are all below its vocabulary size")
                replaced += n_replaced
                files[split].write(ids.data)
                starts = counts[split]['tokens'] + np.cumsum(sizes[:, 0]) - sizes[:, 0]
                rows_files[split].write(np.column_stack([starts, sizes[:, 0], doc_sources]).astype(np.int64).data)
                for sid in np.unique(doc_sources):
                    mine = doc_sources == sid
                    row = totals[split].setdefault(int(sid), np.zeros(len(STAT_KEYS), dtype=np.int64))
                    row += [mine.sum(), *sizes[mine].sum(axis=0)]
                counts[split]['tokens'] += len(ids)
                counts[split]['documents'] += len(doc_sources)
                bar.update(len(doc_sources))
                bar.set_postfix_str(f"{counts['train']['tokens'] + counts['val']['tokens']:,} tokens", refresh=False)

        for split, texts, doc_sources in _batches(source.documents, source.default_label, source_ids):
            in_flight.append((split, np.array(doc_sources, dtype=np.int64), submit(texts)))
            write_done(keep=2 * num_proc)
        write_done(keep=0)
        for split in SPLITS:
            if counts[split]['documents'] == 0:
                raise UserError(f"no documents went to the {split} split: "
                                + ("give more documents or a larger --val_fraction, or --val_input"
                                   if split == 'val' else "the input is empty"))
            for f in (files[split], rows_files[split]):
                f.flush()
                os.fsync(f.fileno())
                f.close()
        if not bar.disable and bar.total != bar.n:  # the source's count was an estimate: end the bar at 100%
            bar.total = bar.n
            bar.refresh()
        bar.close()
        if replaced:
            print(f"{replaced:,} document{'s' if replaced != 1 else ''} had invalid characters "
                  f"(lone UTF-16 surrogates) replaced by U+FFFD")

        for split in SPLITS:  # the raw rows as .npy, read through a memory map (no copy in memory)
            _save_npy(docs_paths[split], np.memmap(rows_paths[split], dtype=np.int64, mode='r',
                                                   shape=(counts[split]['documents'], 3)))
        _save_npy(token_bytes_path, token_bytes(tokenizer))
        names = list(source_ids)
        meta = {'vocab_size': tokenizer.vocab_size, 'tokenizer': dict(spec), 'bos_id': bos_id,
                'eos_id': tokenizer.eos_id, 'dtype': np.dtype(DTYPE).name, 'splits': counts,
                'source': source.description, 'split_names': dict(source.split_names),
                'sources': names, 'stats': {split: _stats(totals[split], names) for split in SPLITS},
                'token_bytes': TOKEN_BYTES_FILE,
                'docs': {split: os.path.basename(docs_paths[split]) for split in SPLITS}}
        assert not set(source.extra_meta) & set(meta), 'a source may add entries to meta.pkl, not replace them'
        meta.update(source.extra_meta)
        # the folder is complete only once meta.pkl exists: drop the old one before replacing the other files
        _remove(os.path.join(out_dir, 'meta.pkl'))
        for path in list(paths.values()) + list(docs_paths.values()) + [token_bytes_path]:
            os.replace(path + '.tmp', path)
        with open(os.path.join(out_dir, 'meta.pkl.tmp'), 'wb') as f:
            pickle.dump(meta, f)
        os.replace(os.path.join(out_dir, 'meta.pkl.tmp'), os.path.join(out_dir, 'meta.pkl'))
        return meta
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        for f in list(files.values()) + list(rows_files.values()):
            f.close()
        for path in ([path + '.tmp' for path in list(paths.values()) + list(docs_paths.values()) + [token_bytes_path]]
                     + list(rows_paths.values()) + [os.path.join(out_dir, 'meta.pkl.tmp')]):
            _remove(path)
        _worker.clear()


# ----------------------------------------------------------------------------------------------
# The command line of the prepare.py scripts

@dataclasses.dataclass
class Recipe:
    """What one dataset declares."""
    title: str                               # one line, for --help
    tokenizer: dict                          # default {'kind', 'name'}; --tokenizer replaces the name
    bos: bool                                # documents begin with the tokenizer's BOS
    default_source: Callable                 # args -> Source, used without --input
    out_dir: str                             # default --out_dir: the script's folder
    source_field: Optional[str] = None       # default --source_field: a document's source label
    input_source: Optional[Callable] = None  # args -> Source for --input, where the dataset reads its own
                                             # format (default: file_source, jsonl / parquet files)
    input_help: Optional[str] = None         # --input's help, with input_source


def default_num_proc():
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


def parse_args(recipe, argv):
    parser = argparse.ArgumentParser(description=recipe.title)
    parser.add_argument('--input', nargs='+', metavar='PATH',
                        help=recipe.input_help or f"local {', '.join(INPUT_SUFFIXES)} files with a 'text' field, or "
                                                  f"folders of them, instead of the default source")
    parser.add_argument('--val_input', nargs='+', metavar='PATH', help='local files for val.bin (with --input)')
    parser.add_argument('--val_fraction', type=float, default=None,
                        help=f'without --val_input: fraction of --input documents held out for val.bin, chosen '
                             f'by a hash of the document index (default {DEFAULT_VAL_FRACTION})')
    parser.add_argument('--max_docs', type=int, default=None,
                        help='read at most this many documents from each input (a quick subset)')
    parser.add_argument('--tokenizer', default=recipe.tokenizer['name'],
                        help=f"{recipe.tokenizer['kind']} tokenizer: hub id / encoding name or a local "
                             f"folder / file (default {recipe.tokenizer['name']})")
    parser.add_argument('--num_proc', type=int, default=default_num_proc(),
                        help='tokenizer processes (default: all cores)')
    parser.add_argument('--out_dir', default=recipe.out_dir,
                        help='where train.bin, val.bin, their .docs.npy, token_bytes.npy and meta.pkl go')
    parser.add_argument('--source_field', default=recipe.source_field, metavar='PATH',
                        help=f"dotted path of the field of each record that names the document's source, for "
                             f"statistics per source (default {recipe.source_field}; records without it: "
                             f"'{UNKNOWN_SOURCE}')")
    parser.add_argument('--streaming', action='store_true',
                        help='stream the Hugging Face dataset instead of downloading it to the cache first')
    args = parser.parse_args(argv)
    if args.val_input and not args.input:
        raise UserError('--val_input needs --input')
    if args.val_input and args.val_fraction is not None:
        raise UserError('give --val_input or --val_fraction, not both')
    if args.val_fraction is not None and not args.input:
        raise UserError('--val_fraction applies to --input (the default source has its own validation split)')
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        raise UserError(f'--val_fraction must be between 0 and 1, got {args.val_fraction}')
    if args.num_proc < 1:
        raise UserError(f'--num_proc must be at least 1, got {args.num_proc}')
    if args.max_docs is not None and args.max_docs < 1:
        raise UserError(f'--max_docs must be at least 1, got {args.max_docs}')
    return args


def prepare(recipe, argv=None):
    args = parse_args(recipe, argv)
    if args.input:  # input errors before any work
        source = recipe.input_source(args) if recipe.input_source else file_source(args)
    else:
        source = recipe.default_source(args)
    spec = portable_spec(recipe.tokenizer['kind'], args.tokenizer)
    tokenizer = load_tokenizer(spec)
    print(f"{recipe.title}\ntokenizer {spec['kind']} {spec['name']}: {tokenizer.vocab_size:,} ids, "
          f"bos {tokenizer.bos_id if recipe.bos else None}, eos {tokenizer.eos_id}; {args.num_proc} processes")
    start = time.time()
    meta = write_dataset(args.out_dir, tokenizer, spec, recipe.bos, source, args.num_proc)
    elapsed = time.time() - start
    tokens = sum(s['tokens'] for s in meta['splits'].values())
    for split in SPLITS:
        s = meta['stats'][split]['all']
        print(f"{split}.bin: {s['tokens']:,} tokens, {s['documents']:,} documents, "
              f"{s['tokens'] * np.dtype(DTYPE).itemsize / 1e6:,.1f} MB; {s['bytes']:,} bytes of text, "
              f"{s['bytes'] / s['tokens']:.3f} bytes/token")
        if len(meta['sources']) > 1:
            for name in meta['sources']:
                if name in meta['stats'][split]:
                    s = meta['stats'][split][name]
                    print(f"  {name}: {s['tokens']:,} tokens, {s['documents']:,} documents, {s['bytes']:,} bytes, "
                          f"{s['bytes'] / s['tokens']:.3f} bytes/token")
    print(f"{tokens:,} tokens in {elapsed:.1f} s ({tokens / elapsed:,.0f} tokens/s) -> {os.path.abspath(args.out_dir)}")
    return meta


def main(recipe, argv=None):
    """A prepare.py script's entry point: user errors are one line on stderr and exit status 2."""
    try:
        prepare(recipe, argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: partial files removed, nothing was replaced", file=sys.stderr)
        sys.exit(130)


# ----------------------------------------------------------------------------------------------
# Benchmark: the pipeline's tokens/s beside the tokenizer's own batch encoding on the same cores

def bench(argv=None):
    parser = argparse.ArgumentParser(
        prog='dataprep.py bench',
        description="tokens/s of prepare's pipeline (reading, worker processes, writing) beside the "
                    "tokenizer's own multi-threaded batch encoding, on the same text and cores")
    parser.add_argument('--kind', choices=sorted(TOKENIZER_KINDS), required=True)
    parser.add_argument('--tokenizer', default='utf-8', help='hub id, encoding name, folder or ranks file')
    parser.add_argument('--input', nargs='+', required=True, metavar='PATH')
    parser.add_argument('--max_docs', type=int, default=None)
    parser.add_argument('--num_proc', type=int, default=default_num_proc())
    parser.add_argument('--bos', action='store_true', help='begin documents with BOS (as the LLaMA datasets do)')
    args = parser.parse_args(argv)
    spec = portable_spec(args.kind, args.tokenizer)
    tokenizer = load_tokenizer(spec)
    args.val_input, args.val_fraction, args.source_field = None, None, None
    texts = [d[1] for d in file_source(args).documents]

    # the pipeline first: its fork must not inherit a tokenizer whose thread pool is already running
    out_dir = tempfile.mkdtemp(prefix='dataprep-bench-')
    try:
        args.val_fraction = 0.01
        start = time.perf_counter()
        meta = write_dataset(out_dir, tokenizer, spec, args.bos, file_source(args), args.num_proc, progress=False)
        pipeline_s = time.perf_counter() - start
    finally:
        shutil.rmtree(out_dir)
    tokenizer.limit_threads(args.num_proc)
    start = time.perf_counter()
    raw_tokens = sum(map(len, tokenizer.encode_batch(texts)))
    raw_s = time.perf_counter() - start
    one_core = texts[::args.num_proc]  # a 1/num_proc share, on one thread: the linear-scaling ceiling
    start = time.perf_counter()
    one_core_tokens = sum(len(tokenizer.encode(t)) for t in one_core)
    one_core_s = time.perf_counter() - start

    pipeline_tokens = sum(s['tokens'] for s in meta['splits'].values())
    assert pipeline_tokens == raw_tokens + len(texts) * (2 if args.bos else 1), 'pipeline and raw encodings differ'
    result = {'tokenizer': spec, 'vocab_size': tokenizer.vocab_size, 'num_proc': args.num_proc,
              'documents': len(texts), 'characters': sum(map(len, texts)), 'tokens': raw_tokens,
              'raw_tokens_per_s': round(raw_tokens / raw_s), 'pipeline_tokens_per_s': round(raw_tokens / pipeline_s),
              'pipeline_over_raw': round(raw_s / pipeline_s, 3),
              'one_core_tokens_per_s': round(one_core_tokens / one_core_s)}
    print(f"{len(texts):,} documents, {result['characters']:,} characters, {raw_tokens:,} tokens, "
          f"{args.num_proc} cores")
    print(f"tokenizer alone ({args.num_proc} threads): {result['raw_tokens_per_s']:,} tokens/s")
    print(f"tokenizer on one core: {result['one_core_tokens_per_s']:,} tokens/s "
          f"(x {args.num_proc} = {result['one_core_tokens_per_s'] * args.num_proc:,})")
    print(f"prepare pipeline ({args.num_proc} processes, reading and writing included): "
          f"{result['pipeline_tokens_per_s']:,} tokens/s = {result['pipeline_over_raw']:.0%} of the tokenizer alone")
    print(json.dumps(result))
    return result


USAGE = ("usage: python dataprep.py bench --kind {bytes,hf,tiktoken} --tokenizer NAME --input PATH ...  "
         "(datasets are prepared by data/<name>/prepare.py; python dataprep.py bench --help for the options)")

if __name__ == '__main__':
    if sys.argv[1:2] in (['--help'], ['-h']):
        print(USAGE)
        sys.exit(0)
    if sys.argv[1:2] != ['bench']:
        sys.exit(USAGE)
    try:
        bench(sys.argv[2:])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
