"""
eval_downstream.py: a checkpoint of either architecture, trained here on a dataset with a tokenizer
built here (LLaMA with a Llama-2-style one, GPT-2 with a GPT-2-style tiktoken one), evaluated by
lm_eval on two tasks defined over local data files (a two-choice task and a last-word task), offline;
and a GPT-2 whose vocabulary is padded past its tokenizer's.
The accuracies and the perplexity equal a direct computation from our model's log-likelihoods, and
bits_per_byte equals eval_bpb.py's; user mistakes are one-line errors that write nothing.
"""
import importlib.util
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

pytestmark = pytest.mark.slow  # trains the models it evaluates (python train.py)

stand_in = helpers.stand_in_tokenizers()

TRAIN = [f"Question: how do you open a jar {i}?\nAnswer: turn the lid. The cat sat on the mat number {i}."
         for i in range(60)]
VAL = ["The cat sat on the mat.", "Question: how do you close a jar?\nAnswer: turn the lid back.",
       "A dog sat on the rug, twice.", "Question: where is the mat?\nAnswer: under the cat, number 7.",
       "Turn the jar; sing songs loudly.", "The mat number 3 is on the floor, and the cat is on it."]
CHOICE_DOCS = [dict(goal=f"how do you open a jar {i}?", sol1="turn the lid.", sol2=f"sing {i} songs loudly.",
                    label=i % 2) for i in range(6)] + \
              [dict(goal="where did the cat sit?", sol1="on the mat.", sol2="in a tree.", label=0),
               dict(goal="what is turned?", sol1="a jar", sol2="the lid.", label=1)]
WORD_DOCS = [dict(text=t) for t in ("The cat sat on the mat", "Answer: turn the lid", "The cat sat on a jar",
                                    "how do you open a mat")]
CHOICE_TASK = """task: tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{goal}}}}\\nAnswer:"
doc_to_target: label
doc_to_choice: "{{{{[sol1, sol2]}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 2.0
"""
WORD_TASK = """task: tiny_last_word
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
output_type: loglikelihood
test_split: test
doc_to_text: "{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' '+text.split(' ')[-1]}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
TASKS = '--tasks=tiny_choice,tiny_last_word'


def write_jsonl(path, records):
    with open(path, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)


def offline_env(root, **extra):
    return helpers.env(HF_DATASETS_OFFLINE='1', HF_HUB_OFFLINE='1', HF_DATASETS_CACHE=str(root / 'hf-cache'),
                       TOKENIZERS_PARALLELISM='false', **extra)


def start(root, args):
    return subprocess.Popen([sys.executable, 'eval_downstream.py', *args], cwd=REPO, env=offline_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(root, args):
    proc = start(root, args)
    stdout, stderr = proc.communicate(timeout=helpers.TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def error_args(root, tasks, out, case):
    return [f'--out_dir={out}', '--tasks=tiny_choice,no_such_task', f'--include_path={tasks}',
            f"--hf_dir={root / ('hf-' + case.replace(' ', '-'))}", '--device=cpu']


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """(root, tasks folder, {arch: out_dir of a tiny model trained on its own tokenizer's dataset},
    the unknown-task run: (its process, a snapshot of its out_dir before)). That run reads all of
    lm_eval's task definitions (tens of seconds), so it starts as soon as it has a checkpoint, while
    the second model trains."""
    root = tmp_path_factory.mktemp('downstream')
    write_jsonl(root / 'train.jsonl', [{'text': t} for t in TRAIN])
    write_jsonl(root / 'val.jsonl', [{'text': t} for t in VAL])
    tasks = root / 'tasks'
    tasks.mkdir()
    write_jsonl(tasks / 'choice.jsonl', CHOICE_DOCS)
    write_jsonl(tasks / 'words.jsonl', WORD_DOCS)
    (tasks / 'tiny_choice.yaml').write_text(CHOICE_TASK.format(path=tasks / 'choice.jsonl'))
    (tasks / 'tiny_last_word.yaml').write_text(WORD_TASK.format(path=tasks / 'words.jsonl'))
    texts = TRAIN + VAL + [json.dumps(d) for d in CHOICE_DOCS + WORD_DOCS]
    tokenizers = {'llama': ('slimpajama_6b_llama', stand_in.llama_style(texts, 400, str(root / 'llama-tok'))),
                  'gpt2': ('slimpajama_6b_gpt2', stand_in.gpt2_style_ranks(texts, 400, str(root / 'gpt2.tiktoken')))}
    outs, unknown = {}, None
    try:
        for arch, (script, tokenizer) in tokenizers.items():
            data = root / f'data-{arch}'
            subprocess.run([sys.executable, os.path.join('data', script, 'prepare.py'), '--input',
                            str(root / 'train.jsonl'), '--val_input', str(root / 'val.jsonl'), '--out_dir', str(data),
                            '--num_proc', '1', '--tokenizer', tokenizer],
                           cwd=REPO, check=True, capture_output=True, text=True, timeout=120)
            outs[arch] = str(root / f'out-{arch}')
            helpers.train(helpers.train_args(str(data), outs[arch], arch=arch, max_iters=12) + ['--vocab_size=None'])
            if unknown is None:  # in a folder of its own, which the other tests do not write into
                alone = root / 'out-unknown-task'
                alone.mkdir()
                os.link(os.path.join(outs[arch], 'ckpt.pt'), alone / 'ckpt.pt')
                before = helpers.snapshot(str(alone))
                unknown = (start(root, error_args(root, tasks, str(alone), 'unknown task')), str(alone), before)
        # GPT-2's vocabulary padded past its tokenizer's (50257 -> 50304 in the 1.36B config): 512 past ~400
        outs['gpt2-padded'] = str(root / 'out-gpt2-padded')
        helpers.train(helpers.train_args(str(root / 'data-gpt2'), outs['gpt2-padded'], arch='gpt2', max_iters=12)
                      + ['--vocab_size=512'])
        yield root, tasks, outs, unknown
    finally:
        if unknown is not None and unknown[0].poll() is None:
            unknown[0].kill()
            unknown[0].communicate()


def loglikelihood(model, tokenizer, context, continuation):
    """(sum of log p(continuation | context), whether each continuation token is the argmax), the
    continuation's tokens being those the whole text has past the context's (a trailing space of the
    context moved to the continuation)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    n_context = len(tokenizer.encode(context))
    assert 0 < n_context < len(whole) <= model.config.block_size + 1
    seq = torch.tensor(whole)
    with torch.no_grad():
        logits, _ = model(seq[None, :-1])
    logprobs = F.log_softmax(logits[0].double(), dim=-1)[n_context - 1:]
    targets = seq[n_context:]
    return logprobs.gather(1, targets[:, None]).sum().item(), bool((logprobs.argmax(-1) == targets).all())


def direct_scores(out_dir, hf_dir):
    """tiny_choice's acc and acc_norm, tiny_last_word's perplexity and acc, from our model (not the
    export) and the exported tokenizer."""
    from checkpoint import load_checkpoint, model_from_checkpoint
    from transformers import AutoTokenizer
    model = model_from_checkpoint(load_checkpoint(os.path.join(out_dir, 'ckpt.pt'))).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    correct = correct_norm = 0
    for doc in CHOICE_DOCS:
        choices = [doc['sol1'], doc['sol2']]
        lls = np.array([loglikelihood(model, tokenizer, f"Question: {doc['goal']}\nAnswer:", ' ' + c)[0]
                        for c in choices])
        correct += int(np.argmax(lls) == doc['label'])
        correct_norm += int(np.argmax(lls / np.array([len(c) for c in choices])) == doc['label'])
    words = [loglikelihood(model, tokenizer, d['text'].rsplit(' ', 1)[0], ' ' + d['text'].rsplit(' ', 1)[1])
             for d in WORD_DOCS]
    return dict(choice_acc=correct / len(CHOICE_DOCS), choice_acc_norm=correct_norm / len(CHOICE_DOCS),
                word_perplexity=math.exp(-sum(ll for ll, _ in words) / len(words)),
                word_acc=sum(greedy for _, greedy in words) / len(words))


@pytest.mark.parametrize('arch', ['llama', 'gpt2', 'gpt2-padded'])
def test_scores_equal_a_direct_computation(arch, setup):
    root, tasks, outs, _ = setup
    out, hf_dir = outs[arch], root / f'hf-{arch}'
    proc = run(root, [f'--out_dir={out}', TASKS, f'--include_path={tasks}', f'--hf_dir={hf_dir}', '--device=cpu',
                      '--batch_size=4'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(os.path.join(out, 'downstream_iter12.json')))
    assert not [f for f in os.listdir(out) if f.endswith('.tmp')]
    assert result['iter_num'] == 12 and result['settings']['tasks'] == 'tiny_choice,tiny_last_word'
    assert sorted(result['tasks']) == ['tiny_choice', 'tiny_last_word']
    assert result['versions'] == {'tiny_choice': 2.0, 'tiny_last_word': 1.0}
    assert result['n_samples']['tiny_choice']['effective'] == len(CHOICE_DOCS)
    assert result['n_samples']['tiny_last_word']['effective'] == len(WORD_DOCS)

    want = direct_scores(out, str(hf_dir))
    choice, word = result['tasks']['tiny_choice'], result['tasks']['tiny_last_word']
    assert choice['acc'] == pytest.approx(want['choice_acc'])
    assert choice['acc_norm'] == pytest.approx(want['choice_acc_norm'])
    assert choice['acc_stderr'] > 0 or want['choice_acc'] in (0, 1)
    assert word['perplexity'] == pytest.approx(want['word_perplexity'], rel=1e-4)
    assert word['acc'] == pytest.approx(want['word_acc'])

    import eval_bpb  # the same documents, the same number
    assert eval_bpb.main([f'--out_dir={out}', '--device=cpu']) == 0
    bpb = json.load(open(os.path.join(out, 'bpb_val_iter12.json')))
    assert result['bits_per_byte'] == pytest.approx(bpb['overall']['bpb'], rel=1e-9)
    assert result['bpb']['overall']['documents'] == len(VAL)
    if arch == 'gpt2-padded':
        from transformers import AutoConfig, AutoTokenizer
        tokenizer_vocab = len(AutoTokenizer.from_pretrained(str(hf_dir)))
        assert AutoConfig.from_pretrained(str(hf_dir)).vocab_size == 512 > tokenizer_vocab
    assert f"tiny_choice: acc {choice['acc']:.4f}" in proc.stdout


def test_lm_eval_missing_is_a_one_line_error(setup, monkeypatch, capsys):
    """Checked before any work: nothing is read or written."""
    root, tasks, outs, _ = setup
    import eval_downstream
    from configurator import UserError
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'lm_eval' else real(name, *a))
    before = helpers.snapshot(outs['llama'])
    with pytest.raises(UserError) as error:
        eval_downstream.main([f'--out_dir={outs["llama"]}', '--device=cpu'])
    assert str(error.value) == ('eval_downstream.py needs lm-evaluation-harness with its Hugging Face backend: '
                                'pip install "lm_eval[hf]"')
    assert helpers.snapshot(outs['llama']) == before


@pytest.mark.parametrize('case', ['missing checkpoint', 'unknown task'])
def test_user_errors_are_one_line_and_write_nothing(case, setup):
    root, tasks, outs, unknown = setup
    if case == 'unknown task':
        proc, out, before = unknown
        stdout, stderr = proc.communicate(timeout=helpers.TIMEOUT)
    else:
        out = str(root / 'no-such-run')
        before = helpers.snapshot(out)
        proc = run(root, error_args(root, tasks, out, case))
        stderr = proc.stderr
    assert proc.returncode == 2, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in stderr, stderr[-3000:]
    expected = {'missing checkpoint': f"error: no checkpoint at {out}/ckpt.pt",
                'unknown task': "error: unknown lm_eval task no_such_task: not among lm_eval's tasks or under"}
    assert lines[0].startswith(expected[case]), lines[0]
    assert helpers.snapshot(out) == before and not (root / f"hf-{case.replace(' ', '-')}").exists()
