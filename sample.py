"""
Text from a trained checkpoint, decoded with its dataset's tokenizer.

    python sample.py --out_dir=out-quick-llama
    python sample.py --out_dir=out-llama-1.36b --start="The capital of France" --num_samples=3
    python sample.py --out_dir=out-llama-1.36b --start=FILE:prompt.txt --temperature=0.7 --top_k=50
"""

import os

import torch

from checkpoint import inference_device, load_checkpoint, model_from_checkpoint
from configurator import DEVICE_OR_AUTO, DTYPES, Configurator, UserError, check_device, run_cli
from loader import check_vocabulary
from tokenizer import tokenizer_of

DEFAULTS = dict(
    out_dir='out',             # the run whose ckpt.pt to sample from
    start='',                  # the prompt, or FILE:path to read it from a file; '' = a new document
    num_samples=3,             # samples drawn, one after another, from the same prompt
    max_new_tokens=200,        # tokens generated per sample
    temperature=0.8,           # 0 = greedy; < 1 sharper, > 1 more random
    top_k=200,                 # sample among the top_k most likely tokens; 0 = all
    seed=1337,                 # torch's seed before sampling: the same seed, the same samples
    device='auto',             # 'auto' = cuda if available, else cpu
    dtype='bfloat16',          # on GPU; CPU samples in float32
    dataset='',                # where the tokenizer's meta.pkl lives, if not the checkpoint's dataset
)
CHOICES = dict(device=DEVICE_OR_AUTO, dtype=DTYPES)  # allowed values, checked as the arguments are read


def main(argv):
    c = Configurator(DEFAULTS, choices=CHOICES).parse(argv)
    check_device(c['device'])
    device, autocast = inference_device(c['device'], c['dtype'])
    for key in ('num_samples', 'max_new_tokens', 'top_k'):
        if c[key] < 0:
            raise UserError(f"{key} must be >= 0, got {c[key]}")
    if c['temperature'] < 0:
        raise UserError(f"temperature must be >= 0 (0 = greedy), got {c['temperature']}")
    ckpt = load_checkpoint(os.path.join(c['out_dir'], 'ckpt.pt'))
    _, tokenizer = tokenizer_of(ckpt, c['dataset'])
    # the model may pad its vocabulary past the tokenizer's: never sample a padding id (generate's vocab_limit)
    run_dataset = ckpt['config'].get('dataset') or ''
    check_vocabulary(c['dataset'] or run_dataset, tokenizer.vocab_size, ckpt['model_args']['vocab_size'], run_dataset)
    model = model_from_checkpoint(ckpt).to(device).eval()
    del ckpt

    start = c['start']
    if start.startswith('FILE:'):
        path = start[len('FILE:'):]
        if not os.path.isfile(path):
            raise UserError(f"prompt file '{path}' not found")
        with open(path, encoding='utf-8') as f:
            start = f.read()
    # a document begins with BOS where the tokenizer has one (LLaMA); an empty prompt starts a new
    # document after the end-of-document token (GPT-2, bytes)
    prefix = [tokenizer.bos_id] if tokenizer.bos_id is not None else ([] if start else [tokenizer.eos_id])
    ids = prefix + tokenizer.encode(start)
    if len(ids) > model.config.block_size:
        ids = ids[-model.config.block_size:]
    x = torch.tensor(ids, dtype=torch.long, device=device)[None, ...]

    torch.manual_seed(c['seed'])
    with torch.no_grad(), autocast:
        for number in range(1, c['num_samples'] + 1):
            print(f"--- sample {number} of {c['num_samples']} ---", flush=True)  # a header line above each sample
            y = model.generate(x, c['max_new_tokens'], temperature=c['temperature'], top_k=c['top_k'] or None,
                               vocab_limit=tokenizer.vocab_size)
            print(tokenizer.decode(y[0, len(prefix):].tolist()), flush=True)
    return 0


if __name__ == '__main__':
    run_cli(main)
