"""
Text from a trained checkpoint, decoded with its dataset's tokenizer.

    python sample.py --out_dir=out-quick-llama
    python sample.py --out_dir=out-llama-1.36b --start="The capital of France" --num_samples=3
    python sample.py --out_dir=out-llama-1.36b --start=FILE:prompt.txt --temperature=0.7 --top_k=50
"""

import os

import torch

from checkpoint import load_checkpoint, model_from_checkpoint
from configurator import Configurator, UserError, run_cli

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


def load_tokenizer_for(ckpt, dataset_override):
    """The tokenizer named by the checkpoint (or its dataset's meta.pkl)."""
    from dataprep import load_tokenizer
    spec = ckpt.get('tokenizer')
    if dataset_override or spec is None:
        from loader import load_meta, resolve_dataset
        dataset = dataset_override or ckpt['config'].get('dataset')
        spec = load_meta(resolve_dataset(dataset))['tokenizer']
    try:
        return load_tokenizer(spec)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot load the tokenizer {spec} ({type(e).__name__}: {e}); "
                        f"pass --dataset=FOLDER whose meta.pkl names a tokenizer available here") from None


def inference_device(name, dtype):
    """(device, autocast context) of a script that runs a checkpoint: 'auto' = cuda if available;
    autocast in dtype on GPU, float32 on CPU."""
    device = name if name != 'auto' else ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise UserError("device='cuda' but no CUDA GPU is visible: pass --device=cpu")
    if device.startswith('cuda') and dtype != 'float32':
        return device, torch.autocast('cuda', dtype=getattr(torch, dtype))
    return device, torch.autocast('cpu', enabled=False)


def main(argv):
    c = Configurator(DEFAULTS).parse(argv)
    device, autocast = inference_device(c['device'], c['dtype'])
    ckpt = load_checkpoint(os.path.join(c['out_dir'], 'ckpt.pt'))
    tokenizer = load_tokenizer_for(ckpt, c['dataset'])
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
        for _ in range(c['num_samples']):
            y = model.generate(x, c['max_new_tokens'], temperature=c['temperature'], top_k=c['top_k'] or None)
            new = y[0, len(prefix):].tolist()
            print(tokenizer.decode(new))
            print('---------------')
    return 0


if __name__ == '__main__':
    run_cli(main)
