"""
Reliability of what the project reads from disk and writes for others: a dataset's meta.pkl holds
plain values only and loading it runs no code of the file; a document index that does not tile its
split is refused; the wall time of a resumed run places its evaluations and its iterations on one
axis; the exported Hugging Face tokenizer reads text as training did (a special token's string in
the text is text); a dataset folder that lacks a file names that file.
"""
import os
import pickle
import signal

import numpy as np
import pytest

import dataprep
import helpers
import hf_format
import loader
import runlog
from configurator import UserError
from tokenizer import load_tokenizer

stand_in = helpers.stand_in_tokenizers()

TEXTS = ["hello <|endoftext|> world", "<|endoftext|>", "a<|endoftext|><|endoftext|>b <|endoftext|>\n",
         "say <s> and </s> and <unk> here", "</s><s>", "plain text, no specials at all."]
# what the stand-in tokenizers learn from: the texts without the special strings, so that, as in the real
# tokenizers, no merge spells one (a stand-in trained on '<s>' learns a piece '<s>' that is the token's id)
PLAIN = [text.replace('<', ' ').replace('>', ' ').replace('|', ' ') for text in TEXTS]


# -----------------------------------------------------------------------------
# meta.pkl: plain values only, read by one loader

class Calls:
    """Pickled as a call of function(*args): unpickling it calls it."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    """name -> (what meta.pkl holds, the global the refusal names): each would create `marker` when unpickled."""
    return {
        'os.system': (Calls(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        'eval': (Calls(eval, f"open({str(marker)!r}, 'w').close() or {{'vocab_size': 257}}"), 'builtins.eval'),
        # hidden in a value of an otherwise good meta.pkl
        'open, nested': ({'vocab_size': 257, 'dtype': 'uint16', 'tokenizer': Calls(open, str(marker), 'w')},
                         'io.open'),
    }


def write_meta(folder, meta, protocol=None):
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f, protocol=protocol)


@pytest.mark.parametrize('payload', ['os.system', 'eval', 'open, nested'])
def test_a_meta_pkl_that_would_run_code_is_refused_unloaded(tmp_path, payload):
    data = helpers.make_dataset(tmp_path / 'data')
    marker = tmp_path / 'pwned'
    meta, name = payloads(marker)[payload]
    write_meta(data, meta)
    with pytest.raises(UserError) as e:
        loader.load_meta(data)
    assert not marker.exists(), "unpickling meta.pkl ran the file's code"
    message = str(e.value)
    assert '\n' not in message, message
    assert message == (f"{data}/meta.pkl is not a dataset's meta.pkl: it holds a Python object no meta.pkl holds "
                       f"({name}); it was not loaded, since loading it could run code from the file: run the "
                       f"dataset's prepare.py again with --out_dir={data}"), message


def test_every_meta_pkl_the_writer_writes_still_loads(tmp_path):
    """dataprep.write_dataset's meta.pkl for each tokenizer kind (with and without BOS, several sources),
    in every pickle protocol: load_meta gives back exactly what the writer returned."""
    texts = [f"document {i}: {'héllo wörld </s> <|endoftext|> ' * (i % 3 + 1)}\n" for i in range(30)]
    specs = {'bytes': ({'kind': 'bytes', 'name': 'utf-8'}, False),
             'tiktoken': ({'kind': 'tiktoken', 'name': stand_in.gpt2_style_ranks(texts, 300, str(tmp_path / 'g.tiktoken'))},
                          False),
             'hf': ({'kind': 'hf', 'name': stand_in.llama_style(texts, 320, str(tmp_path / 'llama'))}, True)}
    for kind, (spec, bos) in specs.items():
        out = str(tmp_path / kind)
        documents = [('val' if i % 5 == 4 else 'train', text, ('code', 'prose')[i % 2]) for i, text in enumerate(texts)]
        source = dataprep.Source('thirty documents', {'train': 'train', 'val': 'validation'}, iter(documents))
        written = dataprep.write_dataset(out, load_tokenizer(spec), spec, bos, source, 1, progress=False)
        assert loader.load_meta(out) == written, kind
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            write_meta(out, written, protocol)
            assert loader.load_meta(out) == written, (kind, protocol)
        loader.TokenBatches(out, batch_size=2, block_size=8, seed=1)  # and the dataset opens
    # nanoGPT's character-level meta.pkl: plain dicts of str and int
    chars = sorted(set('hello world'))
    nano = {'vocab_size': len(chars), 'itos': dict(enumerate(chars)), 'stoi': {c: i for i, c in enumerate(chars)}}
    write_meta(str(tmp_path), nano)
    assert loader.load_meta(str(tmp_path)) == nano


@pytest.mark.slow  # python train.py
def test_train_py_refuses_a_crafted_meta_pkl_before_it_runs(tmp_path):
    data = helpers.make_dataset(tmp_path / 'data')
    marker = tmp_path / 'pwned'
    write_meta(data, payloads(marker)['open, nested'][0])
    out = str(tmp_path / 'out')
    proc = helpers.train(helpers.train_args(data, out, max_iters=2), check=False)
    assert not marker.exists(), "train.py ran the code of meta.pkl"
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (
        f"error: {data}/meta.pkl is not a dataset's meta.pkl: it holds a Python object no meta.pkl holds (io.open); "
        f"it was not loaded, since loading it could run code from the file: run the dataset's prepare.py again "
        f"with --out_dir={data}"), lines
    assert not os.path.exists(out)


# -----------------------------------------------------------------------------
# the document index must tile its split

@pytest.fixture
def indexed(tmp_path):
    """A bytes dataset of 30 documents as dataprep writes it: (folder, meta, val.docs.npy's rows)."""
    spec = {'kind': 'bytes', 'name': 'utf-8'}
    documents = [('val' if i % 3 == 0 else 'train', f"document {i}: {'lorem ipsum ' * (i % 4 + 1)}\n") for i in range(30)]
    source = dataprep.Source('thirty documents', {'train': 'train', 'val': 'val'}, iter(documents))
    meta = dataprep.write_dataset(str(tmp_path), load_tokenizer(spec), spec, False, source, 1, progress=False)
    docs = np.load(tmp_path / 'val.docs.npy')
    assert len(docs) == 10 and (docs[1:, 0] == docs[:-1, 0] + docs[:-1, 1]).all()
    loader.TokenBatches(str(tmp_path), batch_size=2, block_size=8, seed=1)  # the writer's own index opens
    return str(tmp_path), meta, docs


def refusal(folder, meta, docs):
    """The UserError of loading `docs` as val.docs.npy, through document_index and through TokenBatches."""
    np.save(os.path.join(folder, 'val.docs.npy'), docs)
    num_tokens = os.path.getsize(os.path.join(folder, 'val.bin')) // 2
    with pytest.raises(UserError) as direct:
        loader.document_index(folder, meta, 'val', num_tokens)
    with pytest.raises(UserError) as batches:
        loader.TokenBatches(folder, batch_size=2, block_size=8, seed=1)
    assert str(direct.value) == str(batches.value)
    message = str(direct.value)
    assert "\n" not in message and message.startswith(f"{folder}/val.docs.npy")
    assert message.endswith(f"run the dataset's prepare.py again with --out_dir={folder}"), message
    return message


def test_reversed_middle_starts_are_refused(indexed):
    folder, meta, docs = indexed
    docs = docs.copy()
    docs[1:-1, 0] = docs[1:-1, 0][::-1].copy()  # first start and last end unchanged
    message = refusal(folder, meta, docs)
    end = int(docs[0, 0] + docs[0, 1])
    assert f"document 1 begins at token {int(docs[1, 0]):,}, not where document 0 ends ({end:,})" in message


def test_a_span_past_the_end_is_refused(indexed):
    folder, meta, docs = indexed
    num_tokens = int(docs[-1, 0] + docs[-1, 1])
    docs = docs.copy()
    docs[4, 1] = num_tokens  # document 4 runs past the end of val.bin; the rows around it unchanged
    message = refusal(folder, meta, docs)
    assert (f"document 4 spans tokens {int(docs[4, 0]):,} to {int(docs[4, 0] + docs[4, 1]):,}, past the end of "
            f"val.bin ({num_tokens:,} tokens)") in message


def test_an_empty_document_is_refused(indexed):
    """Every document ends with the end-of-document token: none has 0 tokens."""
    folder, meta, docs = indexed
    docs = np.insert(docs, 3, [docs[3, 0], 0, 0], axis=0)
    assert "document 3 has 0 tokens" in refusal(folder, meta, docs)


# -----------------------------------------------------------------------------
# wall time across a resume

def synthetic_log():
    """A run log as train.py writes it: a first process (start at unix time 1000) stopped after
    iteration 15 (evaluation at 10), resumed 600 s later at 15 (evaluations at 20 and 25)."""
    def records(start, times):
        return [dict(iter=i, time=t, unix_time=start + t) for i, t in times]
    iters = records(1000.0, [(i, 0.06 * i) for i in range(1, 16)]) + records(1600.0, [(i, 0.3 + 0.06 * (i - 15))
                                                                                    for i in range(16, 26)])
    evals = records(1000.0, [(10, 0.62)]) + records(1600.0, [(20, 0.63), (25, 0.95)])
    return dict(env=dict(start_iter=0), iters=iters, evals=evals, events=[],
                resumes=[dict(env=dict(start_iter=15), dropped_records=0)])


def test_resumed_processes_are_placed_alike_for_iters_and_evals():
    log = synthetic_log()
    runlog.add_wall_time(log)
    first = 0.06 * 15  # the first process's last record: its iteration 15
    assert [r['wall'] for r in log['evals']] == pytest.approx([0.62, first + 0.63, first + 0.95])
    assert [r['wall'] for r in log['iters']] == pytest.approx([0.06 * i for i in range(1, 16)]
                                                              + [first + 0.3 + 0.06 * (i - 15) for i in range(16, 26)])
    merged = sorted(log['iters'] + log['evals'], key=lambda r: r['unix_time'])
    assert all(a['wall'] <= b['wall'] for a, b in zip(merged, merged[1:]))


def test_a_log_without_unix_time_still_gets_a_wall_time():
    """Logs written before unix_time: each list's drops in 'time' start a process, placed as above."""
    log = dict(env={}, iters=[{'iter': i, 'time': t} for i, t in ((1, 0.2), (2, 0.4), (3, 0.1), (4, 0.3))],
               evals=[{'iter': 2, 'time': 0.3}, {'iter': 4, 'time': 0.35}, {'iter': 4, 'time': 0.05}])
    runlog.add_wall_time(log)
    assert [r['wall'] for r in log['iters']] == pytest.approx([0.2, 0.4, 0.5, 0.7])
    assert [r['wall'] for r in log['evals']] == pytest.approx([0.3, 0.35, 0.45])


@pytest.mark.slow  # python train.py, stopped by SIGTERM and resumed
def test_a_resumed_run_logs_evals_and_iters_on_one_time_axis(tmp_path):
    import plot_runs
    data = helpers.make_dataset(tmp_path / 'data')
    out = str(tmp_path / 'out')
    args = helpers.train_args(data, out, max_iters=40, eval_interval=10)
    proc = helpers.start('train.py', args)
    helpers.wait_for_line(proc, lambda line: line.startswith('iter 13: loss '))  # after the evaluation at 10
    proc.send_signal(signal.SIGTERM)
    code, lines = helpers.finish(proc)
    assert code == 0 and any(line.startswith('stopped at iter ') for line in lines), lines[-10:]
    helpers.train(args + ['--init_from=resume'])
    run = plot_runs.load_run(out)
    start = helpers.run_log(out)[0]['resumes'][0]['env']['start_iter']
    assert 13 <= start < 20
    iters = {r['iter']: r for r in run.iters}
    after = [r for r in run.evals if r['iter'] > start]
    assert [r['iter'] for r in after] == [20, 30, 40]
    for evaluation in after:  # written right after its iteration's record, by the same process
        step = iters[evaluation['iter']]
        assert evaluation['wall'] - step['wall'] == pytest.approx(evaluation['unix_time'] - step['unix_time'], abs=1e-3)
    merged = sorted(run.iters + run.evals, key=lambda r: r['unix_time'])
    assert all(a['wall'] <= b['wall'] for a, b in zip(merged, merged[1:]))


# -----------------------------------------------------------------------------
# the exported tokenizer encodes text as training did

def exported(tmp_path, spec):
    from transformers import AutoTokenizer
    tokenizer = load_tokenizer(spec)
    out = str(tmp_path / 'hf')
    assert hf_format.save_tokenizer(spec, tokenizer, out, 64) == f"tokenizer: {spec['kind']} {spec['name']!r} saved"
    return tokenizer, AutoTokenizer.from_pretrained(out)


def test_exported_tiktoken_tokenizer_reads_special_strings_as_text(tmp_path):
    spec = {'kind': 'tiktoken', 'name': stand_in.gpt2_style_ranks(PLAIN * 5, 300, str(tmp_path / 'g.tiktoken'))}
    ours, hf = exported(tmp_path, spec)
    eot = ours.encoding.eot_token
    assert len(ours.encode("hello <|endoftext|> world")) > 4
    for text in TEXTS:
        ids = ours.encoding.encode_ordinary(text)
        assert eot not in ids
        assert hf.encode(text) == ids, text
        assert hf(text)['input_ids'] == ids and hf([text, text])['input_ids'] == [ids, ids]
        assert hf.decode(ids) == text
    # the token itself is still there: the end of a document, decoded as its string
    assert hf.eos_token_id == eot and hf.convert_ids_to_tokens(eot) == '<|endoftext|>'
    assert hf.decode(ours.encode("hello") + [eot]) == "hello<|endoftext|>"


def test_exported_hf_tokenizer_reads_special_strings_as_text(tmp_path):
    spec = {'kind': 'hf', 'name': stand_in.llama_style(PLAIN * 5, 320, str(tmp_path / 'llama'))}
    ours, hf = exported(tmp_path, spec)
    specials = {ours.bos_id, ours.eos_id, hf.unk_token_id}
    for text in TEXTS:
        ids = ours.encode(text)  # training's encoding (dataprep adds BOS and EOS around it)
        assert not specials & set(ids)
        assert hf.encode(text, add_special_tokens=False) == ids, text
        assert hf(text, add_special_tokens=False)['input_ids'] == ids
    assert (hf.bos_token_id, hf.eos_token_id) == (ours.bos_id, ours.eos_id) == (1, 2)
    assert hf.decode([ours.bos_id] + ours.encode("hello") + [ours.eos_id]) == "<s> hello</s>"


# -----------------------------------------------------------------------------
# a dataset folder that lacks a file

def test_a_folder_without_val_bin_names_the_file_not_a_prepare_py_it_lacks(tmp_path, monkeypatch):
    folder = helpers.make_dataset(tmp_path / 'my_data', splits=('train',))
    with pytest.raises(UserError) as e:
        loader.resolve_dataset(folder)
    assert str(e.value) == (f"dataset folder '{folder}' lacks val.bin: run its prepare.py with --out_dir={folder} "
                            f"(python data/<dataset>/prepare.py --out_dir={folder}), or give a folder that holds "
                            f"train.bin, val.bin and meta.pkl")
    assert 'data/my_data/prepare.py' not in str(e.value)
    # a dataset of the repository's data/ still names its own prepare.py
    repo = tmp_path / 'repo'
    (repo / 'data' / 'mine').mkdir(parents=True)
    (repo / 'data' / 'mine' / 'prepare.py').write_text('')
    monkeypatch.setattr(loader, 'REPO_DIR', str(repo))
    with pytest.raises(UserError) as e:
        loader.resolve_dataset('mine')
    assert str(e.value) == (f"dataset folder '{repo}/data/mine' lacks train.bin, val.bin, meta.pkl: run its prepare.py "
                            f"(python data/mine/prepare.py)")
