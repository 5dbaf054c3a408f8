"""
Token ids against the vocabulary (issue 29): a meta.pkl that disagrees with its .bin files (a smaller
vocab_size, another dtype) is a one-line error when the dataset is opened, before train.py writes
anything, never a traceback from the embedding at the first step. The loader reads a bounded sample
of each split (loader.check_token_ids); the writer, dataprep.write_dataset, checks every id it writes.
"""
import os
import pickle

import numpy as np
import pytest

import dataprep
import helpers
import loader
from configurator import UserError
from tokenizer import ByteTokenizer


def set_meta(folder, **changes):
    """Rewrite keys of a dataset's meta.pkl (the .bin files stay as they are)."""
    with open(os.path.join(folder, 'meta.pkl'), 'rb') as f:
        meta = pickle.load(f)
    meta.update(changes)
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    return meta


def flat_dataset(folder, train, val, vocab_size, dtype='uint16'):
    """train.bin and val.bin holding the given arrays as they are, and a meta.pkl of vocab_size and dtype."""
    os.makedirs(folder, exist_ok=True)
    for split, ids in (('train', train), ('val', val)):
        np.asarray(ids).tofile(os.path.join(folder, f'{split}.bin'))
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump({'vocab_size': vocab_size, 'dtype': dtype}, f)
    return str(folder)


# ----------------------------------------------------------------------------------------------
# python train.py on a dataset whose meta.pkl disagrees with its .bin files

MISMATCHES = {
    # case: (meta.pkl's changed keys, model settings)
    'vocab_size 100 over bytes': ({'vocab_size': 100, 'eos_id': 99}, ['--vocab_size=None']),  # the model takes 100
    'uint32 over uint16': ({'dtype': 'uint32'}, []),  # pairs of byte ids read as one id, beyond the model's 257
}


@pytest.mark.slow  # python train.py
@pytest.mark.parametrize('case', list(MISMATCHES))
def test_mismatched_meta_is_one_line_before_any_output(tmp_path, case):
    changes, model = MISMATCHES[case]
    data = helpers.make_dataset(tmp_path / 'data')  # byte ids 0..255, 20,000 and 4,000 tokens (even counts)
    meta = set_meta(data, **changes)
    largest = np.fromfile(os.path.join(data, 'train.bin'), dtype=meta['dtype']).max()  # small: read whole
    out = str(tmp_path / 'out')
    before = helpers.snapshot(data)
    proc = helpers.train(helpers.train_args(data, out) + model, check=False)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert 'Traceback' not in proc.stderr and 'Traceback' not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr[-3000:]
    assert (f"train.bin holds token id {largest:,} (read as {meta['dtype']}) but meta.pkl's vocab_size is "
            f"{meta['vocab_size']}: ") in lines[0] and "prepare.py again (python data/data/prepare.py)" in lines[0], lines[0]
    assert not os.path.exists(out)  # no run log, no checkpoint: out_dir not even created
    assert helpers.snapshot(data) == before


# ----------------------------------------------------------------------------------------------
# loader.check_token_ids, called directly and by TokenBatches

def test_a_prepared_dataset_passes(tmp_path):
    """The writer's own output opens: the check refuses nothing dataprep writes."""
    spec = {'kind': 'bytes', 'name': 'utf-8'}
    documents = [('val' if i % 5 == 4 else 'train', f"document {i}: {'héllo wörld ' * (i + 1)}\n") for i in range(40)]
    source = dataprep.Source('forty documents', {'train': 'train', 'val': 'val'}, iter(documents))
    meta = dataprep.write_dataset(str(tmp_path), dataprep.load_tokenizer(spec), spec, False, source, 1, progress=False)
    loader.check_token_ids(str(tmp_path), meta)
    loader.TokenBatches(str(tmp_path), batch_size=2, block_size=16, seed=1)
    ids = np.fromfile(tmp_path / 'train.bin', dtype=np.uint16)
    assert ids.max() == meta['vocab_size'] - 1  # the end-of-document id, the largest there is: the bound is tight


def test_the_message_says_what_is_wrong_and_what_to_do(tmp_path):
    data = flat_dataset(tmp_path / 'bytes', np.arange(256, dtype=np.uint16), np.arange(50, dtype=np.uint16), 100)
    with pytest.raises(UserError) as e:
        loader.TokenBatches(data, batch_size=2, block_size=8, seed=1)
    message = str(e.value)
    assert '\n' not in message and len(message) < 400, message
    assert message == (f"{data}/train.bin holds token id 255 (read as uint16) but meta.pkl's vocab_size is 100: the "
                       f"files are from different preparations; run the dataset's prepare.py again "
                       f"(python data/bytes/prepare.py)")
    ok = flat_dataset(tmp_path / 'val', np.arange(100, dtype=np.uint16), np.arange(101, dtype=np.uint16), 100)
    with pytest.raises(UserError, match=r"/val\.bin holds token id 100 "):  # each split is checked
        loader.check_token_ids(ok, {'vocab_size': 100, 'dtype': 'uint16'})


def test_eval_bpb_reads_the_split_through_the_same_check(tmp_path):
    import bpb
    data = flat_dataset(tmp_path / 'bytes', np.arange(50, dtype=np.uint16), np.arange(256, dtype=np.uint16), 100)
    os.remove(os.path.join(data, 'train.bin'))  # eval_bpb.py needs only the split it scores
    with pytest.raises(UserError, match=r"/val\.bin holds token id 255 \(read as uint16\) but meta.pkl's vocab_size is 100"):
        bpb.dataset_files(data, 'val')


def test_dtype_must_fit_the_files(tmp_path):
    # 999 uint16 tokens are 1,998 bytes: not whole uint32 tokens
    odd = flat_dataset(tmp_path / 'odd', np.zeros(999, np.uint16), np.zeros(100, np.uint16), 257, dtype='uint32')
    with pytest.raises(UserError, match=r"train\.bin is 1,998 bytes, not a whole number of uint32 tokens .*prepare\.py again"):
        loader.check_token_ids(odd, {'vocab_size': 257, 'dtype': 'uint32'})
    # an even count reads as uint32 ids of two byte tokens each: (1 << 16) + 65 = 65,601
    even = flat_dataset(tmp_path / 'even', np.tile(np.uint16([65, 1]), 500), np.zeros(100, np.uint16), 257, 'uint32')
    with pytest.raises(UserError, match=r"holds token id 65,601 \(read as uint32\) but meta.pkl's vocab_size is 257"):
        loader.check_token_ids(even, {'vocab_size': 257, 'dtype': 'uint32'})
    with pytest.raises(UserError, match=r"dtype 'float32' is not an unsigned integer type"):
        loader.check_token_ids(even, {'vocab_size': 257, 'dtype': 'float32'})


def test_a_large_split_is_read_in_a_bounded_sample(tmp_path):
    """A split larger than sample_tokens is read as `chunks` evenly spaced chunks, the first and the last
    included, sample_tokens in all: an id outside them goes unread, one inside is found. A split that
    fits is read whole."""
    n, sample, chunks = 1_000_000, 1000, 10
    length = sample // chunks
    starts = np.linspace(0, n - length, chunks).astype(np.int64)
    read = np.zeros(n, dtype=bool)
    for s in starts:
        read[s:s + length] = True
    assert read.sum() == sample and read[0] and read[-1]
    unread = int(np.flatnonzero(~read)[n // 2])
    meta = {'vocab_size': 100, 'dtype': 'uint16'}
    val = np.zeros(10, np.uint16)
    for position, found in ((unread, False), (int(starts[3]) + length - 1, True), (n - 1, True), (0, True)):
        train = np.zeros(n, np.uint16)
        train[position] = 100
        data = flat_dataset(tmp_path / str(position), train, val, 100)
        if found:
            with pytest.raises(UserError, match='holds token id 100 '):
                loader.check_token_ids(data, meta, sample_tokens=sample, chunks=chunks)
        else:
            loader.check_token_ids(data, meta, sample_tokens=sample, chunks=chunks)
        with pytest.raises(UserError, match='holds token id 100 '):  # a sample as large as the split: read whole
            loader.check_token_ids(data, meta, sample_tokens=n, chunks=chunks)
    assert loader.SAMPLE_TOKENS <= 1 << 22  # the default: at most 8 MB of uint16 a split, on any size of file


# ----------------------------------------------------------------------------------------------
# dataprep.write_dataset checks every id it writes

class ShortVocabulary(ByteTokenizer):
    """A tokenizer that declares fewer ids than it gives: byte ids up to 255 under a vocab_size of 100."""
    vocab_size, eos_id = 100, 99

    def token_bytes(self):
        return np.array([1] * 99 + [0], dtype=np.int32)


def test_the_writer_refuses_ids_beyond_the_vocabulary(tmp_path):
    spec = {'kind': 'bytes', 'name': 'short'}
    documents = [('val' if i % 5 == 4 else 'train', f"document {i} ~~~\n") for i in range(20)]  # '~' is id 126
    source = dataprep.Source('twenty documents', {'train': 'train', 'val': 'val'}, iter(documents))
    out = tmp_path / 'out'
    with pytest.raises(UserError, match=r"^tokenizer 'short' gave token id 126, beyond its vocab_size of 100: "
                                        r"no dataset was written"):
        dataprep.write_dataset(str(out), ShortVocabulary(), spec, False, source, 1, progress=False)
    assert os.listdir(out) == []  # no meta.pkl, no .bin, no leftover .tmp
