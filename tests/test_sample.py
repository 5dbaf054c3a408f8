"""
sample.py: a model whose vocabulary is padded past its tokenizer's (GPT-2's 50257 -> 50304; here 320
past the byte tokenizer's 257) never samples a padding id, and text with one decodes without a crash;
a dataset whose meta.pkl names no tokenizer, and bad options, are one-line errors.
"""
import os
import pickle
import re

import pytest
import torch

import helpers
from test_model import tiny_model

pytestmark = pytest.mark.slow  # python train.py and sample.py runs

BYTES = 257  # the byte tokenizer's vocabulary: 0..255, 256 ends a document


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """{'padded': out_dir of a tiny model of vocabulary 320 trained on a byte dataset (257),
    'untokenized': one trained on a byte dataset whose meta.pkl names no tokenizer}, and that dataset."""
    root = tmp_path_factory.mktemp('sample')
    data = helpers.make_dataset(root / 'data')
    bare = helpers.make_dataset(root / 'bare')
    with open(os.path.join(bare, 'meta.pkl'), 'rb') as f:
        meta = pickle.load(f)
    del meta['tokenizer']
    with open(os.path.join(bare, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    outs = {'padded': str(root / 'out-padded'), 'untokenized': str(root / 'out-untokenized')}
    helpers.train(helpers.train_args(data, outs['padded'], max_iters=4) + ['--vocab_size=320'])
    helpers.train(helpers.train_args(bare, outs['untokenized'], max_iters=2))
    return outs, data


def test_a_padded_vocabulary_never_samples_a_padding_id(runs):
    """At temperature 2 over the whole vocabulary, an untrained padding id would be drawn many times in
    600 tokens (and its byte would not decode)."""
    outs, _ = runs
    proc = helpers.run('sample.py', [f"--out_dir={outs['padded']}", '--device=cpu', '--temperature=2.0', '--top_k=0',
                                     '--num_samples=3', '--max_new_tokens=200'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.findall(r'^--- sample (\d) of 3 ---$', proc.stdout, flags=re.M) == ['1', '2', '3']


def test_generate_masks_ids_past_the_limit():
    """A model that prefers a padding id above all: with vocab_limit it is never drawn, greedy or not."""
    torch.manual_seed(0)
    model = tiny_model('llama', vocab_size=320).eval()
    with torch.no_grad():
        model.lm_head.weight[BYTES:] = model.lm_head.weight[BYTES:] * 0 + 1.0  # padding ids: large logits
        model.lm_head.weight[:BYTES] *= 0.01
    idx = torch.zeros(2, 3, dtype=torch.long)
    with torch.no_grad():
        free = model.generate(idx, 20, temperature=1.0)
        assert (free[:, 3:] >= BYTES).any()  # without the limit, padding ids come
        for temperature, top_k in ((0, None), (1.0, None), (2.0, 5), (1.0, 400)):
            out = model.generate(idx, 20, temperature=temperature, top_k=top_k, vocab_limit=BYTES)
            assert out.shape == (2, 23) and (out[:, 3:] < BYTES).all(), (temperature, top_k)


def test_an_id_outside_the_vocabulary_decodes_without_a_crash(tmp_path):
    from test_export_hf import tiny_ranks_file
    from tokenizer import ByteTokenizer, load_tokenizer
    assert ByteTokenizer().decode([72, 105, 300, 256, 33, 0xc3]) == 'Hi\ufffd<|endoftext|>!\ufffd'
    tiktoken_tok = load_tokenizer({'kind': 'tiktoken', 'name': tiny_ranks_file(tmp_path / 'tiny.tiktoken')})
    assert tiktoken_tok.vocab_size == 265
    assert tiktoken_tok.decode([104, 105, 265, 264, 300]) == 'hi\ufffd<|endoftext|>\ufffd'


def test_a_dataset_without_a_tokenizer_is_a_one_line_error(runs):
    outs, data = runs
    out = outs['untokenized']
    proc = helpers.run('sample.py', [f'--out_dir={out}', '--device=cpu', '--max_new_tokens=5'])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    bare = helpers.load(out)['config']['dataset']
    assert proc.stderr.strip().splitlines() == [
        f"error: the meta.pkl of dataset '{bare}' names no tokenizer (its prepare.py recorded none): pass "
        f"--dataset=FOLDER whose meta.pkl names the tokenizer the checkpoint was trained with"]
    proc = helpers.run('sample.py', [f'--out_dir={out}', '--device=cpu', '--max_new_tokens=5', f'--dataset={data}'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.findall(r'^--- sample (\d) of 3 ---$', proc.stdout, flags=re.M) == ['1', '2', '3']


@pytest.mark.parametrize('option, message', [
    ('--max_new_tokens=-1', "max_new_tokens must be >= 0, got -1"),
    ('--temperature=-0.5', "temperature must be >= 0 (0 = greedy), got -0.5"),
    ('--dtype=half', "--dtype: dtype must be one of 'float32', 'bfloat16', 'float16', got 'half'"),
])
def test_bad_options_are_one_line_errors(runs, option, message):
    import sample
    from configurator import UserError
    outs, _ = runs
    with pytest.raises(UserError) as error:
        sample.main([f"--out_dir={outs['padded']}", '--device=cpu', option])
    assert str(error.value) == message
