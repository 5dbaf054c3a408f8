"""
The data side, offline: the real prepare.py scripts run as subprocesses on small local inputs with
stand-in tokenizers built here (a LLaMA-2-style transformers folder, a GPT-2-style tiktoken ranks
file); the .bin files must decode back to exactly the input documents with their boundaries. Then
the loader: batches as a pure function of (seed, iteration, micro-step), whatever the rank count.
"""
import base64
import collections
import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import dataprep
import loader
from configurator import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_spec = importlib.util.spec_from_file_location('stand_in_tokenizers', os.path.join(REPO, 'data', 'stand_in_tokenizers.py'))
stand_in = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stand_in)

DOCS = [
    "def add(a, b):\n    return a + b\n",
    " leading space, trailing space ",
    "Unicode: café, naïve, 中文, emoji 😀, tab\tand\nnewlines\n\n",
    "",
    "The quick brown fox jumps over the lazy dog. " * 20,
    "<s> and </s> and <|endoftext|> are only text here",
] + [f"document {i}: {'lorem ipsum dolor sit amet ' * (i % 7 + 1)}{i * i}\n" for i in range(60)]
VAL_DOCS = ["validation one\n", "validation two: ünïcödé 🎉"]


def run_prepare(dataset, *args, cwd=REPO, script=None):
    script = script or os.path.join('data', dataset, 'prepare.py')
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def write_jsonl(path, docs):
    with open(path, 'w') as f:
        f.writelines(json.dumps({'text': d, 'meta': {'n': i}}) + '\n' for i, d in enumerate(docs))


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A folder of three shards (.jsonl, .jsonl.zst, .parquet) holding DOCS in order, and val.jsonl."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard
    root = tmp_path_factory.mktemp('inputs')
    shards = root / 'shards'
    shards.mkdir()
    write_jsonl(shards / 'a.jsonl', DOCS[:20])
    with open(shards / 'b.jsonl.zst', 'wb') as f:
        f.write(zstandard.ZstdCompressor().compress(''.join(json.dumps({'text': d}) + '\n' for d in DOCS[20:40]).encode()))
    pq.write_table(pa.table({'text': DOCS[40:], 'id': list(range(len(DOCS) - 40))}), shards / 'c.parquet')
    write_jsonl(root / 'val.jsonl', VAL_DOCS)
    return root


@pytest.fixture(scope='module')
def llama_tokenizer(tmp_path_factory):
    return stand_in.llama_style(DOCS * 3, 400, str(tmp_path_factory.mktemp('llama_tok')))


@pytest.fixture(scope='module')
def gpt2_ranks(tmp_path_factory):
    return stand_in.gpt2_style_ranks(DOCS * 3, 400, str(tmp_path_factory.mktemp('gpt2_tok') / 'gpt2_style.tiktoken'))


def read_split(out_dir, split):
    return np.fromfile(os.path.join(out_dir, f'{split}.bin'), dtype=np.uint16)


def documents_of(ids, tokenizer, bos_id, eos_id):
    """Split a .bin at EOS; check every document begins with BOS (when there is one); decode each."""
    assert len(ids) and ids[-1] == eos_id
    ends = np.flatnonzero(ids == eos_id)
    docs, start = [], 0
    for end in ends:
        doc = ids[start:end].tolist()
        if bos_id is not None:
            assert doc[:1] == [bos_id]
            doc = doc[1:]
        assert bos_id not in doc
        docs.append(tokenizer.decode(doc))
        start = end + 1
    return docs


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()  # the progress bar, if it started, then the one line
    errors = [line for line in lines if line.startswith('error: ')]
    assert errors == lines[-1:] and 'Traceback' not in result.stderr, result.stderr
    for word in words:
        assert word in errors[0]


def test_llama_dataset_decodes_to_the_input(inputs, llama_tokenizer, tmp_path):
    out = tmp_path / 'out'
    # as its README runs it: from the dataset's own folder
    result = run_prepare('slimpajama_6b_llama', '--input', inputs / 'shards', '--val_input', inputs / 'val.jsonl',
                         '--tokenizer', llama_tokenizer, '--out_dir', out, '--num_proc', 2,
                         cwd=os.path.join(REPO, 'data', 'slimpajama_6b_llama'), script='prepare.py')
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ['meta.pkl', 'token_bytes.npy', 'train.bin', 'train.docs.npy',
                                       'val.bin', 'val.docs.npy']
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    tokenizer = dataprep.load_tokenizer(meta['tokenizer'])
    assert meta['tokenizer'] == {'kind': 'hf', 'name': os.path.abspath(llama_tokenizer)}
    assert (meta['bos_id'], meta['eos_id'], meta['vocab_size'], meta['dtype']) == (1, 2, 400, 'uint16')
    assert meta['split_names'] == {'train': '--input', 'val': '--val_input'}
    assert str(inputs / 'shards' / 'c.parquet') in meta['source']
    for split, docs in (('train', DOCS), ('val', VAL_DOCS)):
        ids = read_split(out, split)
        assert documents_of(ids, tokenizer, 1, 2) == docs
        assert meta['splits'][split] == {'tokens': len(ids), 'documents': len(docs)}
        assert ids.max() < meta['vocab_size']
    # encode() adds no special tokens; the documents got them from prepare
    assert tokenizer.encode('hello') == tokenizer.encode_batch(['hello'])[0] and 1 not in tokenizer.encode('hello')


def test_gpt2_dataset_with_held_out_fraction(inputs, gpt2_ranks, tmp_path):
    out = tmp_path / 'out'
    result = run_prepare('slimpajama_6b_gpt2', '--input', inputs / 'shards', '--val_fraction', 0.2,
                         '--tokenizer', gpt2_ranks, '--out_dir', out, '--num_proc', 1)
    assert result.returncode == 0, result.stderr
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    n_ranks = sum(1 for _ in open(gpt2_ranks))
    assert meta['tokenizer'] == {'kind': 'tiktoken', 'name': os.path.abspath(gpt2_ranks)}
    assert (meta['bos_id'], meta['eos_id'], meta['vocab_size']) == (None, n_ranks, n_ranks + 1)
    tokenizer = dataprep.load_tokenizer(meta['tokenizer'])
    val = [d for i, d in enumerate(DOCS) if dataprep.held_out(i, 0.2)]
    train = [d for i, d in enumerate(DOCS) if not dataprep.held_out(i, 0.2)]
    assert 0 < len(val) < len(DOCS) // 2
    assert documents_of(read_split(out, 'train'), tokenizer, None, n_ranks) == train
    assert documents_of(read_split(out, 'val'), tokenizer, None, n_ranks) == val
    assert meta['splits']['val']['documents'] == len(val)


def test_max_docs_and_bytes_tokenizer(inputs, tmp_path):
    out = tmp_path / 'out'
    result = run_prepare('python_stdlib', '--input', inputs / 'shards', '--val_input', inputs / 'val.jsonl',
                         '--max_docs', 5, '--out_dir', out)
    assert result.returncode == 0, result.stderr
    ids = read_split(out, 'train')
    assert ids.tolist() == [b for d in DOCS[:5] for b in list(d.encode()) + [256]]
    assert dataprep.load_tokenizer({'kind': 'bytes', 'name': 'utf-8'}).decode(ids).split('<|endoftext|>')[:5] == DOCS[:5]


def test_python_stdlib_prepares(tmp_path):
    out = tmp_path / 'out'
    start = time.time()
    result = run_prepare('python_stdlib', '--out_dir', out, '--max_docs', 400, '--num_proc', 2)
    assert result.returncode == 0, result.stderr
    assert time.time() - start < 30
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    assert meta['tokenizer'] == {'kind': 'bytes', 'name': 'utf-8'}
    assert (meta['vocab_size'], meta['bos_id'], meta['eos_id']) == (257, None, 256)
    assert 18 <= meta['splits']['val']['documents'] <= 20 and meta['splits']['train']['documents'] > 360
    for split in ('train', 'val'):
        ids = read_split(out, split)
        assert meta['splits'][split]['tokens'] == len(ids) and (ids == 256).sum() == meta['splits'][split]['documents']
    first = read_split(out, 'train')[:2000].tobytes()  # a real Python source file comes first
    assert b'import' in np.frombuffer(first, np.uint16).astype(np.uint8).tobytes()


@pytest.mark.parametrize('kind', ['llama', 'gpt2'])
def test_stdlib_datasets_take_the_real_tokenizers(kind, gpt2_ranks, llama_tokenizer, tmp_path):
    """data/stdlib_llama and data/stdlib_gpt2 tokenize with data/tokenizers/ (the real ones, built
    offline) unless --tokenizer names another; no stand-in is trained on the user's path. Here the
    test's tokenizer stands in for the real one, and a missing default is one line naming build.py."""
    out = tmp_path / 'out'
    result = run_prepare(f'stdlib_{kind}', '--out_dir', out, '--max_docs', 60, '--num_proc', 1,  # the first 60: library files
                         '--tokenizer', llama_tokenizer if kind == 'llama' else gpt2_ranks)
    assert result.returncode == 0, result.stderr
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    assert list(meta['sources']) == ['library'] and (meta['bos_id'] is not None) == (kind == 'llama')
    assert 'stand-in' not in result.stdout and 'training' not in result.stdout
    spec = importlib.util.spec_from_file_location(f'stdlib_{kind}_prepare', os.path.join(REPO, 'data', f'stdlib_{kind}', 'prepare.py'))
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    assert prepare.RECIPE.tokenizer == {'kind': 'hf' if kind == 'llama' else 'tiktoken',
                                        'name': os.path.join(REPO, 'data', 'tokenizers', 'llama2' if kind == 'llama' else 'gpt2')}
    missing = tmp_path / 'no_tokenizer' / ('llama2' if kind == 'llama' else 'gpt2')
    result = run_prepare(f'stdlib_{kind}', '--out_dir', tmp_path / 'none', '--tokenizer', missing)
    assert_one_line_error(result, str(missing), 'data/tokenizers/build.py')
    assert not (tmp_path / 'none').exists()


def test_interrupted_prepare_leaves_nothing_complete(inputs, tmp_path):
    # the input is a pipe that never ends: the run is killed mid-way, as a crash or an OOM would
    fifo = tmp_path / 'stream.jsonl'
    os.mkfifo(fifo)
    out = tmp_path / 'out'
    proc = subprocess.Popen([sys.executable, 'data/python_stdlib/prepare.py', '--input', str(fifo),
                              '--val_fraction', '0.5', '--out_dir', str(out), '--num_proc', '2'],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:  # open the writing end once prepare has opened the reading end (never block on a dead reader)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, 'prepare never opened its input'
            time.sleep(0.05)
    os.set_blocking(fd, True)
    with open(fd, 'w') as writer:
        writer.write(''.join(json.dumps({'text': d}) + '\n' for d in DOCS * 200))
        writer.flush()
        while not (out / 'train.bin.tmp').exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (out / 'train.bin.tmp').exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not {'train.bin', 'val.bin', 'meta.pkl'} & set(os.listdir(out))


def test_input_failing_partway_cleans_up(inputs, tmp_path):
    bad = tmp_path / 'bad.jsonl'
    write_jsonl(bad, DOCS * 50)
    with open(bad, 'a') as f:
        f.write('{"text": "truncated\n')
    out = tmp_path / 'out'
    out.mkdir()
    result = run_prepare('python_stdlib', '--input', bad, '--val_fraction', 0.5, '--out_dir', out)
    assert_one_line_error(result, 'bad.jsonl line 3301')
    assert os.listdir(out) == []


def test_a_previous_dataset_survives_a_failed_run(inputs, tmp_path):
    out = tmp_path / 'out'
    assert run_prepare('python_stdlib', '--input', inputs / 'shards', '--val_fraction', 0.3, '--out_dir', out).returncode == 0
    before = {f: open(out / f, 'rb').read() for f in os.listdir(out)}
    result = run_prepare('python_stdlib', '--input', inputs / 'shards', '--val_fraction', 0.001, '--out_dir', out)
    assert_one_line_error(result, 'no documents went to the val split')
    assert {f: open(out / f, 'rb').read() for f in os.listdir(out)} == before


def test_vocabulary_over_uint16_refused(inputs, tmp_path):
    ranks = tmp_path / 'huge.tiktoken'
    tokens = [bytes([b]) for b in range(256)] + [bytes([a, b]) for a in range(256) for b in range(256)]
    ranks.write_text(''.join(f'{base64.b64encode(t).decode()} {i}\n' for i, t in enumerate(tokens)))
    out = tmp_path / 'out'
    result = run_prepare('slimpajama_6b_gpt2', '--input', inputs / 'shards', '--tokenizer', ranks, '--out_dir', out)
    assert_one_line_error(result, '65,793 ids', 'uint16')
    assert not out.exists()


def test_missing_input_is_one_line(tmp_path):
    out = tmp_path / 'out'
    result = run_prepare('slimpajama_6b_llama', '--input', tmp_path / 'nowhere.jsonl', '--out_dir', out)
    assert_one_line_error(result, "--input", 'nowhere.jsonl', 'no such file or folder')
    assert not out.exists()
    result = run_prepare('slimpajama_6b_gpt2', '--input', tmp_path, '--out_dir', out)
    assert_one_line_error(result, 'folder holds no')
    result = run_prepare('slimpajama_6b_gpt2', '--input', tmp_path, '--tokenizer', 'no-such-encoding', '--out_dir', out)
    assert result.returncode == 2 and not out.exists()


def test_hub_source_reads_train_then_validation(inputs, monkeypatch, tmp_path):
    # the real hf_source code, with the hub's dataset swapped for a local parquet dataset
    import argparse

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({'text': VAL_DOCS}), tmp_path / 'validation.parquet')
    files = {'train': str(inputs / 'shards' / 'c.parquet'), 'validation': str(tmp_path / 'validation.parquet')}
    load = datasets.load_dataset
    monkeypatch.setattr(datasets, 'load_dataset', lambda dataset_id, split, streaming: load(
        'parquet', data_files={split: files[split]}, split=split, streaming=streaming, cache_dir=str(tmp_path / 'cache')))
    make = dataprep.hf_source('DKYoon/SlimPajama-6B', {'train': 'train', 'val': 'validation'})
    source = make(argparse.Namespace(streaming=False, max_docs=None))
    assert source.total == len(DOCS) - 40 + len(VAL_DOCS) and source.description == 'DKYoon/SlimPajama-6B'
    assert list(source.documents) == [('train', d) for d in DOCS[40:]] + [('val', d) for d in VAL_DOCS]
    source = make(argparse.Namespace(streaming=False, max_docs=1))  # a quick subset streams
    assert source.total is None and list(source.documents) == [('train', DOCS[40]), ('val', VAL_DOCS[0])]


def test_progress_bar_ends_at_its_total(tmp_path, capsys):
    """A source's document count may be an estimate (documents it skips, a bad count): the bar still
    ends full, at the count of documents written."""
    spec = {'kind': 'bytes', 'name': 'utf-8'}
    documents = [('val' if i % 5 == 4 else 'train', f"document {i}\n") for i in range(10)]
    source = dataprep.Source('ten documents', {'train': 'train', 'val': 'val'}, iter(documents), total=12)
    dataprep.write_dataset(str(tmp_path), dataprep.load_tokenizer(spec), spec, False, source, num_proc=1)
    last = capsys.readouterr().err.replace('\r', '\n').strip().splitlines()[-1]
    assert '10/10 ' in last and '100%' in last, last


def test_python_stdlib_progress_total_counts_the_documents_kept():
    """A few standard-library test files are not UTF-8 and are skipped: the total leaves them out."""
    import argparse
    path = os.path.join(REPO, 'data', 'python_stdlib', 'prepare.py')
    spec = importlib.util.spec_from_file_location('stdlib_prepare', path)
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    source = prepare.stdlib_source(argparse.Namespace(max_docs=None))
    assert source.total == len(list(source.documents)) > 1000


def test_load_tokenizer_kinds(gpt2_ranks, llama_tokenizer):
    text = 'x = "héllo" + 中文  \n\t😀'
    for spec in ({'kind': 'bytes', 'name': 'utf-8'}, {'kind': 'tiktoken', 'name': gpt2_ranks},
                 {'kind': 'hf', 'name': llama_tokenizer}):
        tokenizer = dataprep.load_tokenizer(spec)
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text and max(ids) < tokenizer.vocab_size
        assert tokenizer.encode_batch([text, 'ab']) == [ids, tokenizer.encode('ab')]
    with pytest.raises(UserError, match='unknown tokenizer kind'):
        dataprep.load_tokenizer({'kind': 'spm', 'name': 'x'})


# ----------------------------------------------------------------------------------------------
# loader.TokenBatches

@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (('train', 5000), ('val', 1000)):
        rng.integers(0, 257, n).astype(np.uint16).tofile(tmp_path / f'{split}.bin')
    with open(tmp_path / 'meta.pkl', 'wb') as f:
        pickle.dump({'vocab_size': 257, 'dtype': 'uint16'}, f)
    return str(tmp_path)


def as_bytes(batch):
    return batch[0].numpy().tobytes() + batch[1].numpy().tobytes()  # (x, y) or (x, y, rows)


@pytest.mark.parametrize('order', loader.ORDERS)
def test_one_step_reads_the_same_batches_on_one_and_two_ranks(dataset, order):
    accumulation = 4  # global micro-steps per optimizer step
    batches = loader.TokenBatches(dataset, batch_size=3, block_size=16, seed=7, order=order, micro_steps=accumulation)
    for iteration in (0, 5):
        one_rank = [as_bytes(batches.batch('train', iteration, s)) for s in range(accumulation)]
        two_ranks = [as_bytes(batches.batch('train', iteration, s))
                     for rank in (0, 1) for s in range(rank, accumulation, 2)]
        assert sorted(one_rank) == sorted(two_ranks) and len(set(one_rank)) == accumulation
    x, y = batches.batch('train', 0, 0)
    assert x.shape == (3, 16) and x.dtype.is_floating_point is False and (x[:, 1:] == y[:, :-1]).all()


def test_batches_are_a_pure_function_of_seed_iteration_step(dataset):
    a = loader.TokenBatches(dataset, batch_size=2, block_size=8, seed=1, eval_iters=3)
    b = loader.TokenBatches(dataset, batch_size=2, block_size=8, seed=1, eval_iters=3)
    assert as_bytes(a.batch('train', 3, 1)) == as_bytes(b.batch('train', 3, 1))
    assert as_bytes(a.batch('train', 3, 1)) != as_bytes(a.batch('train', 3, 2))
    other_seed = loader.TokenBatches(dataset, batch_size=2, block_size=8, seed=2)
    assert as_bytes(a.batch('train', 3, 1)) != as_bytes(other_seed.batch('train', 3, 1))
    # evaluation batches: the same at every evaluation and in every run with the seed
    assert [as_bytes(a.eval_batch('val', i)) for i in range(3)] == [as_bytes(b.eval_batch('val', i)) for i in range(3)]


def read_windows(batches, iterations, world_size=1, first_iteration=0):
    """{window index: times read} over whole iterations, each rank reading its global micro-steps
    r, r + W, ... as train_step does, checked against the tokens of the window."""
    tokens = np.fromfile(os.path.join(batches.data_dir, 'train.bin'), dtype=np.uint16).astype(np.int64)
    T, seen = batches.block_size, collections.Counter()
    for iteration in range(first_iteration, first_iteration + iterations):
        for rank in range(world_size):
            for step in range(rank, batches.micro_steps, world_size):
                x, y = batches.batch('train', iteration, step)
                for row in range(x.shape[0]):
                    start = int(batches.starts('train', iteration, step)[row])
                    assert start % T == 0 and (x[row].numpy() == tokens[start:start + T]).all()
                    assert (y[row].numpy() == tokens[start + 1:start + T + 1]).all()
                    seen[start // T] += 1
    return seen


@pytest.mark.parametrize('world_size', [1, 2])
def test_each_pass_reads_every_training_window_once(dataset, world_size):
    """5000 tokens, block 16: 312 windows a pass. 3 x 4 = 12 windows an iteration: 26 iterations are
    one pass exactly; 52 are two, and every window is read twice, whatever the ranks."""
    batches = loader.TokenBatches(dataset, batch_size=3, block_size=16, seed=7, micro_steps=4)
    n = batches.num_windows('train')
    assert n == (5000 - 1) // 16 == 312
    assert read_windows(batches, 26, world_size) == {w: 1 for w in range(n)}
    assert batches.epochs(26) == 1.0
    two_passes = read_windows(batches, 52, world_size)
    assert two_passes == {w: 2 for w in range(n)}
    # the two passes are different permutations, each a pure function of the seed
    first = [int(s) for i in range(26) for k in range(4) for s in batches.starts('train', i, k)]
    second = [int(s) for i in range(26, 52) for k in range(4) for s in batches.starts('train', i, k)]
    assert first != second and sorted(first) == sorted(second)


def test_a_pass_survives_a_resume_with_another_batch(dataset):
    """A run reads 10 iterations at 3 x 4 windows, then resumes at 2 x 5: the checkpoint's window count
    (windows_before) puts the resumed run where the first stopped, so the pass still reads every
    window once (a pass straddling micro-batches included)."""
    first = loader.TokenBatches(dataset, batch_size=3, block_size=16, seed=7, micro_steps=4)
    seen = read_windows(first, 10)
    windows = first.windows_before(10)
    assert windows == 120
    resumed = loader.TokenBatches(dataset, batch_size=2, block_size=16, seed=7, micro_steps=5)
    resumed.start(10, windows)
    remaining = -(-(312 - windows) // 10)  # 20 iterations of 10 windows: 192 to go, then 8 of the next pass
    seen += read_windows(resumed, remaining, first_iteration=10)
    assert resumed.windows_before(10 + remaining) == 320
    assert all(seen[w] in (1, 2) for w in range(312)) and sum(seen.values()) == 320
    assert sum(v == 2 for v in seen.values()) == 8  # the next pass's first 8 windows
    # the same resumed run read exactly what one uninterrupted run at the old batch would have read
    straight = loader.TokenBatches(dataset, batch_size=3, block_size=16, seed=7, micro_steps=4)
    assert sorted(straight._pass_order('train', 0)) == list(range(312))
    order = [int(s) // 16 for i in range(10) for k in range(4) for s in first.starts('train', i, k)]
    order += [int(s) // 16 for i in range(10, 10 + remaining) for k in range(5) for s in resumed.starts('train', i, k)]
    assert order[:312] == list(straight._pass_order('train', 0))


def val_windows_read(batches):
    """{window index: times counted} over one evaluation of the validation split, from the tokens
    of every counted row (checked against the window it claims to be)."""
    val = np.fromfile(os.path.join(batches.data_dir, 'val.bin'), dtype=np.uint16).astype(np.int64)
    T, counted = batches.block_size, {}
    for index in range(batches.eval_batches('val')):
        x, y, rows = batches.eval_batch('val', index)
        assert x.shape == (batches.batch_size, T)
        for row in range(rows):
            matches = [w for w in range(batches.num_windows('val')) if (val[w * T:w * T + T] == x[row].numpy()).all()
                       and (val[w * T + 1:w * T + T + 1] == y[row].numpy()).all()]
            assert matches
            counted[matches[0]] = counted.get(matches[0], 0) + 1
    return counted


def test_validation_windows_count_once_when_the_split_is_shorter_than_the_evaluation(dataset):
    """1000 validation tokens are 62 windows of 16; 20 batches of 4 ask for 80: each of the 62 is
    counted once (16 batches, the last with 2 rows that count), not 18 of them twice."""
    batches = loader.TokenBatches(dataset, batch_size=4, block_size=16, seed=1, eval_iters=20)
    assert batches.eval_batches('val') == 16 and batches.eval_batch('val', 15)[2] == 2
    counted = val_windows_read(batches)
    assert sorted(counted) == list(range(62)) and set(counted.values()) == {1}


def test_validation_sample_is_spread_over_the_split_and_the_same_for_every_seed(tmp_path):
    """A split ordered by source (the first half one source, the second another): 24 windows of 4,000
    are a seeded sample from the whole split, not its first 24; every run seed scores the same windows,
    and a smaller evaluation's windows are part of a larger one's."""
    rng = np.random.default_rng(0)
    for split, n in (('train', 5000), ('val', 64001)):
        rng.integers(0, 257, n).astype(np.uint16).tofile(tmp_path / f'{split}.bin')
    with open(tmp_path / 'meta.pkl', 'wb') as f:
        pickle.dump({'vocab_size': 257, 'dtype': 'uint16'}, f)
    a = loader.TokenBatches(str(tmp_path), batch_size=4, block_size=16, seed=1, eval_iters=6)
    b = loader.TokenBatches(str(tmp_path), batch_size=4, block_size=16, seed=2, eval_iters=6)
    windows = sorted(val_windows_read(a))
    assert len(windows) == 24 and windows == sorted(val_windows_read(b))
    assert windows != list(range(24))
    assert sum(w < 2000 for w in windows) >= 6 and sum(w >= 2000 for w in windows) >= 6  # both halves
    smaller = loader.TokenBatches(str(tmp_path), batch_size=4, block_size=16, seed=3, eval_iters=2)
    assert set(smaller.val_sample()) <= set(a.val_sample())


def byte_dataset(folder, docs, sources=('code', 'prose'), meta_sources=True):
    """A byte-level dataset with a document index: docs is a list of (length, source id) for val;
    train is one document. Returns the meta written."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    rng.integers(0, 256, 3000).astype(np.uint16).tofile(os.path.join(folder, 'train.bin'))
    rng.integers(0, 256, sum(n for n, _ in docs)).astype(np.uint16).tofile(os.path.join(folder, 'val.bin'))
    starts = np.cumsum([0] + [n for n, _ in docs[:-1]])
    np.save(os.path.join(folder, 'val.docs.npy'), np.array([[s, n, src] for s, (n, src) in zip(starts, docs)], dtype=np.int64))
    np.save(os.path.join(folder, 'train.docs.npy'), np.array([[0, 3000, 0]], dtype=np.int64))
    np.save(os.path.join(folder, 'token_bytes.npy'), np.array([1] * 256 + [0], dtype=np.int32))
    meta = {'vocab_size': 257, 'dtype': 'uint16', 'token_bytes': 'token_bytes.npy',
            'docs': {'train': 'train.docs.npy', 'val': 'val.docs.npy'}}
    if meta_sources:
        meta['sources'] = list(sources)
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    return meta


def test_byte_targets_are_attributed_to_their_documents_sources(tmp_path):
    folder = str(tmp_path / 'ds')
    byte_dataset(folder, [(400, 0), (600, 1), (201, 0)])
    batches = loader.TokenBatches(folder, batch_size=4, block_size=16, seed=1, eval_iters=20)
    assert batches.source_names() == ['code', 'prose']
    starts, rows = batches.eval_starts('val', 0)
    nbytes, source = batches.eval_targets('val', 0)
    positions = starts[:, None] + 1 + np.arange(16)[None, :]
    expected = np.where(positions < 400, 0, np.where(positions < 1000, 1, 0))
    assert (source.numpy() == expected).all() and (nbytes.numpy() == 1).all()


@pytest.mark.parametrize('stale', ['no_sources_in_meta', 'docs_missing', 'docs_of_other_tokens', 'table_of_other_vocab'])
def test_stale_byte_files_are_a_one_line_error_at_setup(tmp_path, stale):
    """An older prepare.py's meta.pkl over leftover files: an error when the loader is built (before
    any training), never an IndexError at the first evaluation or text attributed to the wrong source."""
    folder = str(tmp_path / 'ds')
    byte_dataset(folder, [(400, 0), (600, 1), (201, 0)], meta_sources=stale != 'no_sources_in_meta')
    if stale == 'docs_missing':
        os.remove(os.path.join(folder, 'val.docs.npy'))
    elif stale == 'docs_of_other_tokens':
        np.save(os.path.join(folder, 'val.docs.npy'), np.array([[0, 400, 0], [400, 500, 1]], dtype=np.int64))
    elif stale == 'table_of_other_vocab':
        np.save(os.path.join(folder, 'token_bytes.npy'), np.ones(300, dtype=np.int32))
    with pytest.raises(UserError, match="prepare.py again"):
        loader.TokenBatches(folder, batch_size=4, block_size=16, seed=1, eval_iters=20)


def test_files_meta_does_not_name_are_not_read(tmp_path):
    """A meta.pkl that names no document index (older preparations): no per-source numbers, even with
    a val.docs.npy of several sources lying in the folder."""
    folder = str(tmp_path / 'ds')
    meta = byte_dataset(folder, [(400, 0), (600, 1), (201, 0)])
    del meta['docs']
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    batches = loader.TokenBatches(folder, batch_size=4, block_size=16, seed=1, eval_iters=20)
    assert batches.source_names() == ['all'] and (batches.eval_targets('val', 0)[1].numpy() == 0).all()


def test_loader_errors(dataset, tmp_path):
    with pytest.raises(UserError, match='vocab_size'):
        loader.TokenBatches(dataset, batch_size=2, block_size=8, seed=1, vocab_size=100)
    with pytest.raises(UserError, match="data_order must be one of 'epoch', 'random'"):
        loader.TokenBatches(dataset, batch_size=2, block_size=8, seed=1, order='shuffle')
    with pytest.raises(UserError, match='not found'):
        loader.resolve_dataset(str(tmp_path / 'no_such_dataset'))
    with pytest.raises(UserError, match='prepare.py'):
        os.remove(os.path.join(dataset, 'val.bin'))
        loader.resolve_dataset(dataset)
