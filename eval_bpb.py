"""
Bits per byte of a checkpoint on its dataset's held-out documents, overall and per source.

The number that compares models whose tokenizers differ: a token is not the same amount of text
for Llama-2's 32,000 pieces and GPT-2's 50,257.

    python eval_bpb.py --out_dir=out-quick-llama
    python eval_bpb.py --out_dir=out-llama-1.36b --max_docs=2000 --device=cuda

bpb.py defines the number and how a document is scored whole (bits_per_byte). The documents: all of
the split's (max_docs=0) or a seeded sample of max_docs of them, the same indices for any tokenizer,
so two datasets prepared from the same documents are scored on the same text (the printed byte total
shows it). The result is printed and written to out_dir/bpb_{split}_iter{N}.json. What it is
doing is printed as it goes: the checkpoint loaded, the documents to score, and the progress (a bar
on a terminal, else a line at each tenth of the work, so that a log shows it working).
"""

import os
import time

from bpb import SPLITS, bits_per_byte, check_options, dataset_files, write_json
from checkpoint import inference_device, load_checkpoint, model_from_checkpoint
from configurator import DEVICE_OR_AUTO, DTYPES, Configurator, check_device, run_cli
from loader import check_vocabulary, resolve_dataset

DEFAULTS = dict(
    out_dir='out',             # the run whose ckpt.pt to score
    split='val',               # the split whose documents are scored
    max_docs=0,                # 0 = every document of the split; else a seeded sample of this many
    seed=1337,                 # which documents the sample takes (the same for any tokenizer)
    dataset='',                # the dataset folder or name, if not the checkpoint's
    device='auto',             # 'auto' = cuda if available, else cpu
    dtype='bfloat16',          # autocast dtype on GPU; CPU scores in float32
)
CHOICES = dict(split=SPLITS, device=DEVICE_OR_AUTO, dtype=DTYPES)  # allowed values, checked as the arguments are read


def main(argv):
    c = Configurator(DEFAULTS, choices=CHOICES).parse(argv)
    check_options(c['split'], c['max_docs'])
    check_device(c['device'])
    device, autocast = inference_device(c['device'], c['dtype'])
    t0, ckpt_path = time.time(), os.path.join(c['out_dir'], 'ckpt.pt')
    print(f"loading {ckpt_path} ...", flush=True)
    ckpt = load_checkpoint(ckpt_path)
    data_dir = resolve_dataset(c['dataset'] or ckpt['config']['dataset'])
    meta = dataset_files(data_dir, c['split'])[0]  # a dataset without the byte files fails before the model is built
    check_vocabulary(data_dir, meta['vocab_size'], ckpt['model_args']['vocab_size'], ckpt['config']['dataset'])
    model = model_from_checkpoint(ckpt).to(device).eval()
    print(f"loaded {ckpt_path} (iteration {ckpt['iter_num']}, {model.num_params():,} parameters) in "
          f"{time.time() - t0:.1f} s", flush=True)
    result = dict(iter_num=ckpt['iter_num'], **bits_per_byte(model, data_dir, c['split'], c['max_docs'], c['seed'],
                                                              device, autocast))
    o = result['overall']
    print(f"{c['split']}: {o['bpb']:.4f} bits per byte over {o['documents']:,} documents, {o['bytes']:,} bytes, "
          f"{o['tokens']:,} tokens ({o['bytes_per_token']:.2f} bytes a token, {o['loss_per_token']:.4f} nats a token)")
    for name, e in result['per_source'].items():
        print(f"  {name}: {e['bpb']:.4f} bits per byte over {e['documents']:,} documents, {e['bytes']:,} bytes")
    path = os.path.join(c['out_dir'], f"bpb_{c['split']}_iter{ckpt['iter_num']}.json")
    write_json(path, result)
    print(f"wrote {path}")
    return 0


if __name__ == '__main__':
    run_cli(main)
