"""
eval_bpb.py: bits per byte of a checkpoint on its dataset's validation documents, overall and per
source, equals a direct computation (one forward pass per document, the bytes of the text as
written in the input file), for a bytes dataset and a tiktoken dataset prepared from the same two-
source documents; both score the same text (the same byte total).
"""
import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import helpers
from helpers import REPO
from loader import load_meta

pytestmark = pytest.mark.slow  # trains the models it evaluates (python train.py)

stand_in = helpers.stand_in_tokenizers()

SOURCES = ('RedPajamaGithub', 'RedPajamaC4')
TRAIN = [(f"def f{i}(x):\n    return x * {i} + {i % 7}  # {'abc ' * (i % 4)}\n" if i % 2 else
          f"Document {i}: the quick brown fox jumps over the lazy dog, café {i}.\n", SOURCES[i % 2]) for i in range(120)]
VAL = [("def g(y):\n    return y - 1\n", SOURCES[0]), ("A short note, naïve.", SOURCES[1]),
       ("Document 7: the lazy dog.", SOURCES[1]), ("x = [1, 2, 3]", SOURCES[0]),
       ("def h(z):\n    return z * z  # square\n", SOURCES[0]), ("The brown fox, 🦊, jumps once more.", SOURCES[1]),
       ("for i in range(10):\n    print(i)\n", SOURCES[0]), ("Document 99: a café near the dog.", SOURCES[1])]


def write_jsonl(path, docs):
    with open(path, 'w') as f:
        f.writelines(json.dumps({'text': t, 'meta': {'redpajama_set_name': s}}) + '\n' for t, s in docs)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """kind -> (dataset folder, out_dir of a tiny model trained on it)."""
    root = tmp_path_factory.mktemp('bpb')
    write_jsonl(root / 'train.jsonl', TRAIN)
    write_jsonl(root / 'val.jsonl', VAL)
    texts = [t for t, _ in TRAIN + VAL]
    kinds = {'bytes': ('python_stdlib', 'utf-8'),
             'tiktoken': ('slimpajama_6b_gpt2', stand_in.gpt2_style_ranks(texts * 3, 300, str(root / 'gpt2.tiktoken')))}
    made = {}
    for kind, (script, tokenizer) in kinds.items():
        data = root / f'data-{kind}'
        subprocess.run([sys.executable, os.path.join('data', script, 'prepare.py'), '--input', str(root / 'train.jsonl'),
                        '--val_input', str(root / 'val.jsonl'), '--out_dir', str(data), '--num_proc', '1',
                        '--tokenizer', tokenizer, '--source_field', 'meta.redpajama_set_name'],
                       cwd=REPO, check=True, capture_output=True, text=True, timeout=120)
        out = str(root / f'out-{kind}')
        helpers.train(helpers.train_args(str(data), out, max_iters=15) + ['--vocab_size=None'])
        made[kind] = (str(data), out)
    return made


def direct_bpb(data, out):
    """{source or 'all': bits per byte}: each validation document in one forward pass from the token
    before it, special tokens (0 bytes) left out, divided by the UTF-8 bytes of its text."""
    from checkpoint import load_checkpoint, model_from_checkpoint
    from loader import load_meta
    meta = load_meta(data)
    model = model_from_checkpoint(load_checkpoint(os.path.join(out, 'ckpt.pt'))).eval()
    tokens = np.fromfile(os.path.join(data, 'val.bin'), dtype=np.uint16).astype(np.int64)
    docs = np.load(os.path.join(data, 'val.docs.npy'))
    specials = {meta['eos_id'], meta['bos_id']} - {None}
    sums = {}
    for (start, length, source), (text, label) in zip(docs, VAL):
        assert meta['sources'][source] == label
        seq = torch.from_numpy(np.concatenate(([tokens[start - 1] if start else meta['eos_id']],
                                               tokens[start:start + length])))
        assert len(seq) <= model.config.block_size + 1  # one window: nothing but the model decides
        with torch.no_grad():
            logits, _ = model(seq[None, :-1])
        nll = F.cross_entropy(logits[0], seq[1:], reduction='none')
        keep = torch.tensor([int(t) not in specials for t in seq[1:]])
        for key in ('all', label):
            s = sums.setdefault(key, [0.0, 0])
            s[0] += nll[keep].sum().item()
            s[1] += len(text.encode('utf-8'))
    return {k: nats / (math.log(2) * nbytes) for k, (nats, nbytes) in sums.items()}


@pytest.mark.parametrize('kind', ['bytes', 'tiktoken'])
def test_bits_per_byte_matches_a_direct_computation(kind, runs):
    data, out = runs[kind]
    proc = helpers.run('eval_bpb.py', [f'--out_dir={out}', '--device=cpu'], check=True)
    result = json.load(open(os.path.join(out, 'bpb_val_iter15.json')))
    want = direct_bpb(data, out)
    assert result['overall']['bpb'] == pytest.approx(want['all'], rel=1e-5)
    assert sorted(result['per_source']) == sorted(SOURCES)
    for source in SOURCES:
        assert result['per_source'][source]['bpb'] == pytest.approx(want[source], rel=1e-5)
    assert result['overall']['bytes'] == sum(len(t.encode('utf-8')) for t, _ in VAL)  # the same text for both
    assert result['overall']['documents'] == len(VAL)
    assert f"val: {result['overall']['bpb']:.4f} bits per byte over {len(VAL)} documents" in proc.stdout


def test_long_documents_are_scored_in_overlapping_windows():
    """A document longer than block_size: the first block_size targets as one forward pass, later
    targets with at least half a block of context; a short one: exactly one forward pass."""
    from bpb import document_nll
    from test_model import tiny_model
    torch.manual_seed(0)
    model = tiny_model('llama').eval()
    block = model.config.block_size
    seq = torch.randint(0, model.config.vocab_size, (2 * block + 7,))
    got = document_nll(model, seq, block, 'cpu', torch.autocast('cpu', enabled=False))
    # the windows the rule gives for 2 * block + 6 targets: (first input, end, first target scored there)
    half = block // 2
    windows = [(0, block, 0), (half, block + half, block), (block, 2 * block, block + half),
               (block + 6, 2 * block + 6, 2 * block)]
    assert len(got) == len(seq) - 1 == 2 * block + 6
    for lo, end, first in windows:
        with torch.no_grad():
            nll = F.cross_entropy(model(seq[None, lo:end])[0][0], seq[lo + 1:end + 1], reduction='none')
        assert torch.allclose(got[first:end], nll[first - lo:].double(), atol=1e-5), (lo, end)


def test_a_dataset_without_the_byte_files_is_a_clear_error(runs, tmp_path):
    """meta.pkl names byte files that are gone; a dataset prepared before byte accounting names none."""
    data, out = runs['bytes']
    bare, old = tmp_path / 'bare', tmp_path / 'old'
    for folder in (bare, old):
        folder.mkdir()
        for name in ('train.bin', 'val.bin'):
            os.link(os.path.join(data, name), folder / name)
    os.link(os.path.join(data, 'meta.pkl'), bare / 'meta.pkl')
    meta = {k: v for k, v in load_meta(data).items() if k not in ('token_bytes', 'docs')}
    with open(old / 'meta.pkl', 'wb') as f:
        pickle.dump(meta, f)
    expected = {bare: f"error: {bare}/token_bytes.npy, which {bare}/meta.pkl names, is missing or unreadable",
                old: f"error: {old}/meta.pkl names no token byte table or no val document index: prepare the "
                     f"dataset again with its prepare.py (bits per byte needs the document index and token byte "
                     f"counts)"}
    for folder, line in expected.items():
        proc = helpers.run('eval_bpb.py', [f'--out_dir={out}', '--device=cpu', f'--dataset={folder}'])
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(line), proc.stderr


@pytest.fixture(scope='module')
def padded(runs, tmp_path_factory):
    """(dataset, out_dir) of a model whose vocabulary (320) is padded past its byte dataset's (257),
    as GPT-2's 50257 is padded to 50304."""
    data, _ = runs['bytes']
    out = str(tmp_path_factory.mktemp('padded') / 'out')
    helpers.train(helpers.train_args(data, out, max_iters=15) + ['--vocab_size=320'])
    assert helpers.load(out)['model_args']['vocab_size'] == 320
    return data, out


def test_a_model_with_a_padded_vocabulary_is_scored(padded):
    data, out = padded
    helpers.run('eval_bpb.py', [f'--out_dir={out}', '--device=cpu'], check=True)
    result = json.load(open(os.path.join(out, 'bpb_val_iter15.json')))
    want = direct_bpb(data, out)
    assert result['overall']['bpb'] == pytest.approx(want['all'], rel=1e-5)
    for source in SOURCES:
        assert result['per_source'][source]['bpb'] == pytest.approx(want[source], rel=1e-5)
    assert result['overall']['bytes'] == sum(len(t.encode('utf-8')) for t, _ in VAL)


def test_the_vocabulary_rule(runs, tmp_path):
    """loader.check_vocabulary: a model's vocabulary may be padded past the dataset's, never smaller;
    the message says what to change: vocab_size for a new model, the dataset for a checkpoint's."""
    from configurator import UserError
    from loader import check_vocabulary
    data, _ = runs['bytes']
    for model_vocab in (257, 320):
        check_vocabulary(data, 257, model_vocab)
        check_vocabulary(data, 257, model_vocab, checkpoint_dataset='python_stdlib')
    with pytest.raises(UserError) as new:
        check_vocabulary(data, 300, 257)
    assert str(new.value) == (f"dataset '{data}' has token ids up to 299 but the model's vocab_size is 257: set "
                              f"vocab_size >= 300 (or leave it unset to take the dataset's)")
    with pytest.raises(UserError) as resumed:
        check_vocabulary(data, 300, 257, checkpoint_dataset=runs['tiktoken'][0])
    message = str(resumed.value)
    assert 'vocab_size' not in message  # a checkpoint's vocabulary is fixed: no setting can change it
    assert message == (f"dataset '{data}' has token ids up to 299 but the checkpoint's model has a vocabulary of "
                       f"257, which the checkpoint fixes: use a dataset of the run's tokenizer, such as its own "
                       f"(--dataset={runs['tiktoken'][0]})")
    with pytest.raises(UserError, match=r"which the checkpoint fixes: the dataset was prepared again with another "
                                        r"tokenizer since the run trained on it; prepare it again with the run's"):
        check_vocabulary(data, 300, 257, checkpoint_dataset=data)


def test_a_checkpoint_on_a_dataset_of_a_larger_vocabulary_is_refused(runs):
    """The bytes model (257) scored on the tiktoken dataset (a larger vocabulary): one line, naming the run's own."""
    bytes_data, out = runs['bytes']
    tiktoken_data, _ = runs['tiktoken']
    proc = helpers.run('eval_bpb.py', [f'--out_dir={out}', '--device=cpu', f'--dataset={tiktoken_data}'])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "but the checkpoint's model has a vocabulary of 257" in lines[0], proc.stderr
    assert lines[0].endswith(f"(--dataset={bytes_data})")


@pytest.mark.parametrize('option, message', [
    ('--max_docs=-1', "max_docs is a number of documents (0 = all of them), got -1"),
    ('--split=test', "--split: split must be one of 'train', 'val', got 'test'"),
    ('--dtype=float8', "--dtype: dtype must be one of 'float32', 'bfloat16', 'float16', got 'float8'; "
                       "did you mean 'float32'?"),
])
def test_bad_options_are_one_line_errors(runs, option, message):
    import eval_bpb
    from configurator import UserError
    _, out = runs['bytes']
    before = helpers.snapshot(out)
    with pytest.raises(UserError) as error:
        eval_bpb.main([f'--out_dir={out}', '--device=cpu', option])
    assert str(error.value) == message
    assert helpers.snapshot(out) == before


def test_the_sums_of_bits_per_byte():
    """bpb.accumulate / summary, train.py's evaluation's: per source, nats and bytes of the targets of
    more than 0 bytes; bpb = nats / (ln 2 x bytes)."""
    import bpb
    generator = torch.Generator().manual_seed(0)
    names = ['a', 'b', 'c']
    nll = torch.rand(4, 16, generator=generator, dtype=torch.float64) * 5
    nbytes = torch.randint(0, 4, (4, 16), generator=generator)  # a quarter of the targets have 0 bytes
    source = torch.randint(0, 2, (4, 16), generator=generator)  # source 'c' has none
    sums = bpb.zeros(len(names))
    for row in range(4):  # batch by batch, as an evaluation adds them
        bpb.accumulate(sums, nll[row], nbytes[row], source[row])
    want = {}
    for n, b, s in zip(nll.flatten().tolist(), nbytes.flatten().tolist(), source.flatten().tolist()):
        if b:
            for key in ('all', names[s]):
                w = want.setdefault(key, [0.0, 0, 0])
                w[0], w[1], w[2] = w[0] + n, w[1] + b, w[2] + 1
    assert sums[:2].flatten().tolist() == pytest.approx(want['a'] + want['b']) and sums[2].tolist() == [0, 0, 0]
    fields = bpb.summary(sums, names)
    assert fields['val_bpb'] == pytest.approx(want['all'][0] / (math.log(2) * want['all'][1]))
    assert fields['val_bytes'] == want['all'][1] == int((nbytes * (nbytes > 0)).sum())
    assert fields['val_bpb_sources'] == pytest.approx({k: want[k][0] / (math.log(2) * want[k][1]) for k in 'ab'})
    assert bpb.summary(bpb.zeros(1), ['all']) == {'val_bpb': None, 'val_bytes': 0, 'val_bpb_sources': None}
    assert bpb.entry(sums.sum(0).tolist(), 5)['tokens'] == want['all'][2] == int((nbytes > 0).sum())
