"""
Documents whose text no tokenizer can take as it is: a JSON line such as {"text": "abc \\ud800 def"} is
valid JSON, and json.loads makes it a str holding a lone UTF-16 surrogate, which UTF-8 cannot encode.
Preparation must not die on it with any tokenizer kind: each lone surrogate becomes U+FFFD (as tiktoken's
own encode does), the other documents are untouched, and one line says how many documents needed it.
The real prepare.py scripts run as subprocesses on a small .jsonl, with the offline stand-in tokenizers.
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

# (document as json.loads reads it, the text its tokens must decode to)
TRAIN = [
    ("plain ascii document\n", "plain ascii document\n"),
    ("abc \ud800 def", "abc \ufffd def"),
    ("Unicode: café, 中文, emoji 😀", "Unicode: café, 中文, emoji 😀"),
    ("lone low \udc00, two highs \udbff\ud800 and a high at the end \ud83d",
     "lone low \ufffd, two highs \ufffd\ufffd and a high at the end \ufffd"),
    ("The quick brown fox jumps over the lazy dog. " * 5, "The quick brown fox jumps over the lazy dog. " * 5),
    ("\udfff", "\ufffd"),
    ("", ""),
] + [(f"document {i}: lorem ipsum {i * i}\n",) * 2 for i in range(10)]
VAL = [("validation one\n", "validation one\n"), ("validation \ud800 two", "validation \ufffd two")]
REPLACED = sum(source != text for source, text in TRAIN + VAL)  # 4 documents with lone surrogates
TEXTS = [text for _, text in TRAIN + VAL]


def write_jsonl(path, docs):
    # json.dumps escapes the lone surrogates as \udXXX, as a producer of such a file would have written them
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(json.dumps({'text': source}) + '\n' for source, _ in docs)


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('surrogates')
    write_jsonl(root / 'train.jsonl', TRAIN)
    write_jsonl(root / 'val.jsonl', VAL)
    assert '\\ud800' in (root / 'train.jsonl').read_text()
    assert json.loads((root / 'train.jsonl').read_text().splitlines()[1])['text'] == "abc \ud800 def"
    return root


@pytest.fixture(scope='module')
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp('tokenizers')
    return {'bytes': ('python_stdlib', None),
            'tiktoken': ('slimpajama_6b_gpt2', stand_in.gpt2_style_ranks(TEXTS * 3, 400, str(root / 'gpt2_style.tiktoken'))),
            'hf': ('slimpajama_6b_llama', stand_in.llama_style(TEXTS * 3, 400, str(root / 'llama')))}


def documents_of(ids, tokenizer, bos_id, eos_id):
    """Split a .bin at EOS, drop each document's BOS (when there is one), decode each."""
    assert len(ids) and ids[-1] == eos_id
    docs, start = [], 0
    for end in np.flatnonzero(ids == eos_id):
        doc = ids[start:end].tolist()
        if bos_id is not None:
            assert doc[:1] == [bos_id]
            doc = doc[1:]
        docs.append(tokenizer.decode(doc))
        start = end + 1
    return docs


@pytest.mark.parametrize('num_proc', [1, 2])
@pytest.mark.parametrize('kind', ['bytes', 'tiktoken', 'hf'])
def test_lone_surrogates_become_replacement_characters(inputs, tokenizers, tmp_path, kind, num_proc):
    dataset, tokenizer_name = tokenizers[kind]
    out = tmp_path / 'out'
    args = ['--input', inputs / 'train.jsonl', '--val_input', inputs / 'val.jsonl', '--out_dir', out,
            '--num_proc', num_proc] + (['--tokenizer', tokenizer_name] if tokenizer_name else [])
    result = subprocess.run([sys.executable, os.path.join('data', dataset, 'prepare.py'), *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    assert meta['tokenizer']['kind'] == kind
    tokenizer = dataprep.load_tokenizer(meta['tokenizer'])
    for split, docs in (('train', TRAIN), ('val', VAL)):
        ids = np.fromfile(out / f'{split}.bin', dtype=np.uint16)
        # the surrogates' documents hold U+FFFD where each lone surrogate was; the others are unchanged
        assert documents_of(ids, tokenizer, meta['bos_id'], meta['eos_id']) == [text for _, text in docs]
        assert meta['splits'][split]['documents'] == len(docs)
    if kind == 'bytes':  # U+FFFD is its UTF-8 bytes in the .bin itself
        head = list(TRAIN[0][1].encode()) + [256] + list(TRAIN[1][1].encode()) + [256]
        assert np.fromfile(out / 'train.bin', dtype=np.uint16).tolist()[:len(head)] == head
        assert TRAIN[1][1].encode() == b'abc \xef\xbf\xbd def'
    notes = [line for line in result.stdout.splitlines() if 'replaced' in line]
    assert notes == [f"{REPLACED} documents had invalid characters (lone UTF-16 surrogates) replaced by U+FFFD"], \
        result.stdout


def test_note_only_when_a_document_was_replaced(inputs, tmp_path):
    """Valid input prints no note; one document replaced is one line, in the singular."""
    write_jsonl(tmp_path / 'clean.jsonl', [d for d in TRAIN if d[0] == d[1]])
    write_jsonl(tmp_path / 'clean_val.jsonl', VAL[:1])
    for val, notes in (('clean_val.jsonl', []),
                       (inputs / 'val.jsonl', ["1 document had invalid characters (lone UTF-16 surrogates) "
                                               "replaced by U+FFFD"])):
        result = subprocess.run([sys.executable, os.path.join('data', 'python_stdlib', 'prepare.py'),
                                 '--input', str(tmp_path / 'clean.jsonl'), '--val_input', str(tmp_path / val),
                                 '--out_dir', str(tmp_path / 'out'), '--num_proc', '1'],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert [line for line in result.stdout.splitlines() if 'replaced' in line] == notes, result.stdout


@pytest.mark.parametrize('kind', ['bytes', 'tiktoken', 'hf'])
def test_every_tokenizer_kind_encodes_lone_surrogates(tokenizers, kind):
    """encode and encode_batch (also sample.py's prompt, the benchmark's raw pass) take such text as the
    text with U+FFFD, and give valid text the same ids as before."""
    name = tokenizers[kind][1] or 'utf-8'
    tokenizer = dataprep.load_tokenizer({'kind': kind, 'name': name})
    sources, texts = zip(*TRAIN)
    expected = [tokenizer.encode(t) for t in texts]
    assert [tokenizer.encode(s) for s in sources] == expected
    for num_threads in (1, 2):
        tokenizer.limit_threads(num_threads)
        assert tokenizer.encode_batch(list(sources)) == expected
        assert tokenizer.encode_batch_counted(list(sources)) == (expected, 3)
        assert tokenizer.encode_batch_counted(list(texts)) == (expected, 0)
    assert tokenizer.decode(tokenizer.encode("abc \ud800 def")) == "abc \ufffd def"


def test_replace_lone_surrogates():
    assert dataprep.replace_lone_surrogates("abc \ud800 def") == "abc \ufffd def"
    assert dataprep.replace_lone_surrogates("\udc00\ud800x\ud800") == "\ufffd\ufffdx\ufffd"  # one U+FFFD each
    assert dataprep.replace_lone_surrogates("\ud83d\ude00") == "😀"  # a pair is no lone surrogate (as tiktoken reads it)
    assert dataprep.replace_lone_surrogates("café 中文 😀") == "café 中文 😀"
