"""
Byte accounting of data preparation, offline: the real prepare.py scripts run on small inputs with two
sources named by each record's meta.redpajama_set_name (SlimPajama's field). meta['stats'] must equal
direct counts of the input texts (documents, characters, UTF-8 bytes) and of the .bin (tokens);
{split}.docs.npy must tile the .bin, each span decoding to its document; token_bytes.npy must give
each document's UTF-8 byte count exactly for bytes, tiktoken and byte-level BPE (GPT-2 style) tokenizers,
and one byte more (SentencePiece's dummy prefix) for a non-empty document under a Llama-2-style one.
"""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import dataprep
import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

stand_in = helpers.stand_in_tokenizers()

# (text as read, source label or None); None: the record has no meta.redpajama_set_name
TRAIN = [
    ("def add(a, b):\n    return a + b\n", 'RedPajamaGithub'),
    ("Unicode: café, naïve, 中文, emoji 😀, tab\tand\r\nnewlines\n\n", 'RedPajamaC4'),
    ("", 'RedPajamaC4'),
    ("  two leading spaces, trailing  ", 'RedPajamaGithub'),
    ("a lone surrogate \ud800 becomes U+FFFD", 'RedPajamaC4'),
    ("no label on this one", None),
    ("<s> and </s> and <|endoftext|> are only text here", 'RedPajamaGithub'),
] + [(f"document {i}: {'lorem ipsum dolor sit amet ' * (i % 5 + 1)}{i * i} ñ\n",
      ('RedPajamaC4', 'RedPajamaGithub')[i % 2]) for i in range(24)]
VAL = [("validation one\n", 'RedPajamaGithub'), ("validation two: ünïcödé 🎉", 'RedPajamaC4'),
       ("validation three", 'RedPajamaC4')]
TEXTS = [dataprep.replace_lone_surrogates(t) for t, _ in TRAIN + VAL]  # the text as tokenized


def record(text, label):
    return {'text': text, 'meta': {'redpajama_set_name': label} if label else {'other': 1}}


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """train.jsonl, and val.parquet with `meta` a struct column (as SlimPajama's parquet shards)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    root = tmp_path_factory.mktemp('inputs')
    with open(root / 'train.jsonl', 'w') as f:
        f.writelines(json.dumps(record(*d)) + '\n' for d in TRAIN)
    pq.write_table(pa.table({'text': [t for t, _ in VAL], 'meta': [record(*d)['meta'] for d in VAL]}),
                   root / 'val.parquet')
    return root


def byte_level_hf(texts, vocab_size, out_dir):
    """A GPT-2-style transformers tokenizer (byte-level BPE: ByteLevel pre-tokenizer and decoder),
    with BOS and EOS special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=['<|endoftext|>', '<|bos|>'], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token='<|bos|>',
                            eos_token='<|endoftext|>').save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope='module')
def tokenizers(tmp_path_factory):
    """kind -> (dataset script, --tokenizer), for the exact kinds; and the Llama-2-style folder."""
    root = tmp_path_factory.mktemp('tokenizers')
    return {'bytes': ('python_stdlib', 'utf-8'),
            'tiktoken': ('slimpajama_6b_gpt2', stand_in.gpt2_style_ranks(TEXTS * 3, 400, str(root / 'gpt2.tiktoken'))),
            'hf': ('slimpajama_6b_llama', byte_level_hf(TEXTS * 3, 400, str(root / 'byte_level'))),
            'llama_style': stand_in.llama_style(TEXTS * 3, 400, str(root / 'llama_style'))}


def expected_stats(docs, tokenizer, specials):
    """meta['stats'] of one split, counted directly from its documents."""
    stats = {}
    for (text, label), tokens in zip(docs, tokenizer.encode_batch([t for t, _ in docs])):
        text = dataprep.replace_lone_surrogates(text)
        for name in (label or 'unknown', 'all'):
            s = stats.setdefault(name, dict.fromkeys(('documents', 'tokens', 'bytes', 'chars'), 0))
            s['documents'] += 1
            s['tokens'] += len(tokens) + specials
            s['bytes'] += len(text.encode('utf-8'))
            s['chars'] += len(text)
    return stats


@pytest.mark.parametrize('kind', ['bytes', 'tiktoken', 'hf'])
def test_stats_docs_index_and_token_bytes(inputs, tokenizers, tmp_path, kind):
    dataset, tokenizer_name = tokenizers[kind]
    out = tmp_path / 'out'
    args = ['--input', inputs / 'train.jsonl', '--val_input', inputs / 'val.parquet', '--out_dir', out,
            '--num_proc', 2, '--tokenizer', tokenizer_name]
    if kind == 'bytes':  # the SlimPajama scripts name the field themselves
        args += ['--source_field', 'meta.redpajama_set_name']
    result = subprocess.run([sys.executable, os.path.join('data', dataset, 'prepare.py'), *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ['meta.pkl', 'token_bytes.npy', 'train.bin', 'train.docs.npy',
                                       'val.bin', 'val.docs.npy']
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    assert meta['sources'] == ['RedPajamaGithub', 'RedPajamaC4', 'unknown']  # in order of appearance
    assert meta['token_bytes'] == 'token_bytes.npy'
    tokenizer = dataprep.load_tokenizer(meta['tokenizer'])
    specials = 1 + (meta['bos_id'] is not None)
    assert specials == (2 if kind == 'hf' else 1)
    token_bytes = np.load(out / meta['token_bytes'])
    assert token_bytes.dtype == np.int32 and token_bytes.shape == (meta['vocab_size'],)
    assert token_bytes[meta['eos_id']] == 0 and (meta['bos_id'] is None or token_bytes[meta['bos_id']] == 0)

    for split, docs in (('train', TRAIN), ('val', VAL)):
        ids = np.fromfile(out / f'{split}.bin', dtype=np.uint16)
        assert meta['stats'][split] == expected_stats(docs, tokenizer, specials)
        assert meta['stats'][split]['all']['tokens'] == len(ids) == meta['splits'][split]['tokens']
        index = np.load(out / meta['docs'][split])
        assert index.dtype == np.int64 and index.shape == (len(docs), 3)
        starts, lengths, sources = index.T
        assert starts[0] == 0 and (starts[1:] == starts[:-1] + lengths[:-1]).all() and lengths.sum() == len(ids)
        for (text, label), (start, length, source) in zip(docs, index):
            span = ids[start:start + length]
            assert meta['sources'][source] == (label or 'unknown')
            assert span[-1] == meta['eos_id'] and (meta['bos_id'] is None or span[0] == meta['bos_id'])
            text = dataprep.replace_lone_surrogates(text)
            assert tokenizer.decode(span[specials - 1:-1]) == text
            assert token_bytes[span].sum() == len(text.encode('utf-8'))  # BOS and EOS count 0
        for name, stats in meta['stats'][split].items():
            mine = sources == meta['sources'].index(name) if name != 'all' else np.ones(len(docs), bool)
            assert stats['tokens'] == lengths[mine].sum()
        assert token_bytes[ids].sum() == meta['stats'][split]['all']['bytes']

    lines = result.stdout.splitlines()
    train = meta['stats']['train']
    assert f"{train['all']['bytes'] / train['all']['tokens']:.3f} bytes/token" in next(l for l in lines if l.startswith('train.bin:'))
    c4 = next(l for l in lines if l.startswith('  RedPajamaC4:'))
    assert f"{train['RedPajamaC4']['bytes'] / train['RedPajamaC4']['tokens']:.3f} bytes/token" in c4


def test_token_bytes_of_each_kind(tokenizers):
    """sum(token_bytes[encode(text)]) is the text's UTF-8 byte count: exactly for bytes, tiktoken and
    byte-level BPE; one byte more for a non-empty text under SentencePiece style (its dummy prefix)."""
    texts = TEXTS + ["unseen: ÿ ß Ω ∑ 日本語 👍🏽 \x00\x7f tabs\t\t", " ", "\n\n", "x", "ü"]
    specs = {'bytes': 'utf-8', 'tiktoken': tokenizers['tiktoken'][1], 'hf': tokenizers['hf'][1],
             'llama_style': tokenizers['llama_style']}
    for kind, name in specs.items():
        tokenizer = dataprep.load_tokenizer({'kind': 'hf' if kind == 'llama_style' else kind, 'name': name})
        table = dataprep.token_bytes(tokenizer)
        assert table.shape == (tokenizer.vocab_size,) and table[tokenizer.eos_id] == 0
        for text in texts:
            ids = tokenizer.encode(text)
            dummy_prefix = kind == 'llama_style' and text != ''
            assert table[ids].sum() == len(text.encode('utf-8')) + dummy_prefix, (kind, text, ids)
    llama = dataprep.load_tokenizer({'kind': 'hf', 'name': tokenizers['llama_style']})
    table = dataprep.token_bytes(llama)
    assert table[llama.bos_id] == table[llama.eos_id] == table[llama.tokenizer.unk_token_id] == 0
    assert table[llama.tokenizer.convert_tokens_to_ids('<0xE4>')] == 1


def test_spans_across_batches_and_one_source(tmp_path, monkeypatch):
    """Many small batches (offsets carried from batch to batch); a source with one name for all."""
    monkeypatch.setattr(dataprep, 'BATCH_DOCS', 3)
    texts = [f"doc {i} {'é' * i}" for i in range(20)]
    documents = [('val' if i % 4 == 3 else 'train', t) for i, t in enumerate(texts)]
    source = dataprep.Source('twenty', {'train': 'train', 'val': 'val'}, iter(documents), default_label='stdlib')
    spec = {'kind': 'bytes', 'name': 'utf-8'}
    meta = dataprep.write_dataset(str(tmp_path), dataprep.load_tokenizer(spec), spec, False, source, 1, progress=False)
    assert meta['sources'] == ['stdlib']
    for split in ('train', 'val'):
        mine = [t for s, t in documents if s == split]
        index = np.load(tmp_path / f'{split}.docs.npy')
        ids = np.fromfile(tmp_path / f'{split}.bin', dtype=np.uint16)
        assert [bytes(ids[a:a + n - 1].astype(np.uint8)).decode() for a, n, _ in index] == mine
        assert (index[:, 2] == 0).all() and index[-1, 0] + index[-1, 1] == len(ids)
        assert meta['stats'][split]['stdlib'] == meta['stats'][split]['all'] == {
            'documents': len(mine), 'tokens': len(ids), 'bytes': sum(len(t.encode()) for t in mine),
            'chars': sum(map(len, mine))}


def test_hub_source_labels(inputs, monkeypatch, tmp_path):
    """The hub source (its `meta` a struct column) labels documents by --source_field."""
    import argparse

    import datasets
    load = datasets.load_dataset
    files = {'train': str(inputs / 'val.parquet'), 'validation': str(inputs / 'val.parquet')}
    monkeypatch.setattr(datasets, 'load_dataset', lambda dataset_id, split, streaming: load(
        'parquet', data_files={split: files[split]}, split=split, streaming=streaming, cache_dir=str(tmp_path / 'cache')))
    make = dataprep.hf_source('DKYoon/SlimPajama-6B', {'train': 'train', 'val': 'validation'})
    source = make(argparse.Namespace(streaming=False, max_docs=None, source_field='meta.redpajama_set_name'))
    assert list(source.documents) == [(split, t, label) for split in ('train', 'val') for t, label in VAL]
