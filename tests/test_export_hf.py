"""export_hf.py's command line: a real checkpoint file -> a folder that AutoModelForCausalLM and
AutoTokenizer load, with the same logits and the same tokens; clear one-line errors otherwise."""

import base64
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import export_hf
from checkpoint import CHECKPOINT_VERSION, save_checkpoint
from configurator import UserError
from test_model import tiny_model

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEXT = "the thing in the theatre, singing 123 times\n\n  über the end<|endoftext|>"


def tiny_ranks_file(path):
    """A GPT-2-style tiktoken ranks file (base64 token and rank a line): 256 bytes and a few merges."""
    merges = (b'th', b'he', b'the', b' t', b' the', b'in', b'ing', b'er')
    with open(path, 'w') as f:
        for rank, token in enumerate([bytes([i]) for i in range(256)] + list(merges)):
            f.write(f"{base64.b64encode(token).decode()} {rank}\n")
    return str(path)


def make_dataset(folder, tokenizer):
    os.makedirs(folder)
    for split in ('train', 'val'):
        np.arange(100, dtype=np.uint16).tofile(os.path.join(folder, f'{split}.bin'))
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump({'vocab_size': 100, 'tokenizer': tokenizer, 'dtype': 'uint16'}, f)
    return folder


def make_checkpoint(path, model, dataset, tokenizer=None):
    """A checkpoint file as train.py writes it; tokenizer=None is an older one that names only its dataset."""
    state = {'version': CHECKPOINT_VERSION, 'model': model.state_dict(), 'model_args': model.config.to_dict(),
             'iter_num': 7, 'config': {'dataset': dataset}}
    if tokenizer is not None:
        state['tokenizer'] = tokenizer
    save_checkpoint(state, str(path))
    return str(path)


def run_cli(*args):
    return subprocess.run([sys.executable, os.path.join(REPO_DIR, 'export_hf.py'), *args],
                          capture_output=True, text=True, cwd=REPO_DIR, timeout=120)


def same_logits(model, folder, **load_kwargs):
    from transformers import AutoModelForCausalLM
    hf_model = AutoModelForCausalLM.from_pretrained(folder, **load_kwargs).eval()
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.block_size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return (model(idx)[0] - hf_model(idx).logits).abs().max().item() < 1e-4


@pytest.mark.slow  # export_hf.py as a process, then two loads in transformers
def test_cli_exports_loadable_folder(tmp_path):
    """The real command in a fresh process: no dataset found, so a note, and the model is exported."""
    model = tiny_model('llama', n_kv_head=2)
    ckpt = make_checkpoint(tmp_path / 'ckpt.pt', model, dataset='no_such_dataset')
    out = tmp_path / 'hf'
    result = run_cli('--ckpt', ckpt, '--out', str(out))
    assert result.returncode == 0, result.stderr
    assert 'LlamaForCausalLM' in result.stdout and "dataset 'no_such_dataset' not found" in result.stdout
    assert (out / 'model.safetensors').is_file() and (out / 'config.json').is_file()
    assert same_logits(model, str(out))
    assert same_logits(model, str(out), attn_implementation='eager')


def test_tiktoken_tokenizer_is_converted(tmp_path, capsys):
    """A GPT-2-style tokenizer from a local ranks file (how prepare.py records one offline)."""
    from tokenizer import load_tokenizer
    from transformers import AutoConfig, AutoTokenizer
    spec = {'kind': 'tiktoken', 'name': tiny_ranks_file(tmp_path / 'tiny.tiktoken')}
    encoding = load_tokenizer(spec).encoding
    model = tiny_model('gpt2', vocab_size=265, n_kv_head=2, bias=True)
    ckpt = make_checkpoint(tmp_path / 'ckpt.pt', model, 'no_such_dataset', tokenizer=spec)  # the spec suffices
    assert export_hf.main(['--ckpt', ckpt, '--out', str(tmp_path / 'hf')]) == 0
    assert "tokenizer: tiktoken" in capsys.readouterr().out
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / 'hf'))
    ids = encoding.encode_ordinary(TEXT)  # as training encodes a document: its '<|endoftext|>' is text
    assert tokenizer.encode(TEXT) == ids and 264 not in ids and tokenizer.eos_token_id == 264
    assert tokenizer.decode(ids) == TEXT and tokenizer.model_max_length == model.config.block_size
    config = AutoConfig.from_pretrained(str(tmp_path / 'hf'))
    assert (config.bos_token_id, config.eos_token_id) == (None, 264)
    assert same_logits(model, str(tmp_path / 'hf'))


def test_hf_tokenizer_is_saved(tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerFast
    backend = Tokenizer(models.BPE(unk_token='<unk>'))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.train_from_iterator([TEXT] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=['<unk>', '<s>', '</s>']))
    local = str(tmp_path / 'tokenizer')
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token='<s>', eos_token='</s>', unk_token='<unk>').save_pretrained(local)
    model = tiny_model('llama', vocab_size=backend.get_vocab_size())
    dataset = make_dataset(str(tmp_path / 'data'), {'kind': 'hf', 'name': local})
    ckpt = make_checkpoint(tmp_path / 'ckpt.pt', model, dataset)
    assert export_hf.main(['--ckpt', ckpt, '--out', str(tmp_path / 'hf')]) == 0
    assert 'tokenizer: hf' in capsys.readouterr().out
    exported = AutoTokenizer.from_pretrained(str(tmp_path / 'hf'))
    assert exported.encode(TEXT) == AutoTokenizer.from_pretrained(local).encode(TEXT)
    config = AutoConfig.from_pretrained(str(tmp_path / 'hf'))
    assert (config.bos_token_id, config.eos_token_id) == (1, 2) == (exported.bos_token_id, exported.eos_token_id)


@pytest.mark.parametrize('tokenizer, note', [
    ({'kind': 'bytes', 'name': 'utf-8'}, 'raw UTF-8 bytes'),
    ({'kind': 'hf', 'name': '/nonexistent/tokenizer'}, "note: no tokenizer files written: cannot load"),
    ({'kind': 'tiktoken', 'name': '/nonexistent/ranks.tiktoken'}, "note: no tokenizer files written: tiktoken"),
])
def test_tokenizer_notes_do_not_stop_the_export(tmp_path, capsys, tokenizer, note):
    model = tiny_model('gpt2', vocab_size=257)
    dataset = make_dataset(str(tmp_path / 'data'), tokenizer)
    ckpt = make_checkpoint(tmp_path / 'ckpt.pt', model, dataset)
    assert export_hf.main(['--ckpt', ckpt, '--out', str(tmp_path / 'hf')]) == 0
    assert note in capsys.readouterr().out
    assert same_logits(model, str(tmp_path / 'hf'))


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = run_cli('--ckpt', str(tmp_path / 'nope.pt'), '--out', str(tmp_path / 'hf'))
    assert result.returncode == 2
    assert result.stderr.startswith('error: no checkpoint at') and 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'hf').exists()


def test_user_errors(tmp_path, capsys):
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'not a checkpoint at all')
    with pytest.raises(UserError, match='is truncated or not a checkpoint'):
        export_hf.main(['--ckpt', str(corrupt), '--out', str(tmp_path / 'a')])
    post_norm = make_checkpoint(tmp_path / 'post.pt', tiny_model('gpt2', norm_placement='post'), 'none')
    with pytest.raises(UserError, match="norm_placement='post' cannot be exported"):
        export_hf.main(['--ckpt', post_norm, '--out', str(tmp_path / 'b')])
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()

    good = make_checkpoint(tmp_path / 'good.pt', tiny_model('gpt2'), 'none')
    occupied = tmp_path / 'occupied'
    occupied.mkdir()
    (occupied / 'notes.txt').write_text('keep me')
    with pytest.raises(UserError, match='exists and is not empty; .* pass --force'):
        export_hf.main(['--ckpt', good, '--out', str(occupied)])
    assert export_hf.main(['--ckpt', good, '--out', str(occupied), '--force', '--dtype', 'bfloat16']) == 0
    assert (occupied / 'notes.txt').read_text() == 'keep me' and (occupied / 'model.safetensors').is_file()
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(str(occupied)).dtype == torch.bfloat16
