"""
eval_bpb.py: bits per byte of a checkpoint on its dataset's validation documents, overall and per
source, equals a direct computation (one forward pass per document, the bytes of the text as
written in the input file), for a bytes dataset and a tiktoken dataset prepared from the same two-
source documents; both score the same text (the same byte total).
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import helpers
from helpers import REPO

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
    from eval_bpb import document_nll
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
    data, out = runs['bytes']
    bare = tmp_path / 'bare'
    bare.mkdir()
    for name in ('train.bin', 'val.bin', 'meta.pkl'):
        os.link(os.path.join(data, name), bare / name)
    proc = helpers.run('eval_bpb.py', [f'--out_dir={out}', '--device=cpu', f'--dataset={bare}'])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {bare} lacks val.docs.npy, token_bytes.npy: prepare the dataset again with its prepare.py "
        f"(bits per byte needs the document index and token byte counts)"]
