"""
Bits per byte of a checkpoint on its dataset's held-out documents, each scored whole, overall and
per source: the number that compares models whose tokenizers differ (a token is not the same amount
of text for Llama-2's 32,000 pieces and GPT-2's 50,257).

    python eval_bpb.py --out_dir=out-quick-llama
    python eval_bpb.py --out_dir=out-llama-1.36b --max_docs=2000 --device=cuda

Definition. Over the scored target tokens t of the chosen documents,

    bpb = sum of -ln p(t | its context)  /  (ln 2 x sum of bytes(t))

where bytes(t) is the number of UTF-8 bytes token t decodes to on its own (the dataset's
token_bytes.npy, written by its prepare.py), and a token with 0 bytes (end of document, BOS: the
special tokens) is left out of both sums. For the byte-level tokenizers (GPT-2's tiktoken, byte-level
BPE, bytes) the bytes of a document's tokens add up to the UTF-8 bytes of its text exactly, so bpb is
per byte of the text itself; SentencePiece's dummy prefix adds one byte (a space) per document.

A document is scored as the model saw it in training: its targets are the tokens of its span in
{split}.bin, predicted from the token before the span (the previous document's end-of-document
token, or its own BOS) onwards. A document longer than block_size is scored in windows that advance
by half a block: every target after the first window has at least block_size / 2 tokens of context.

The documents: all of the split's (max_docs=0) or a seeded sample of max_docs of them, the same
indices for any tokenizer, so two datasets prepared from the same documents are scored on the same
text (the printed byte total shows it). The result is printed and written to
out_dir/bpb_{split}_iter{N}.json.
"""

import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from checkpoint import load_checkpoint, model_from_checkpoint
from configurator import Configurator, UserError, run_cli
from sample import inference_device

DEFAULTS = dict(
    out_dir='out',             # the run whose ckpt.pt to score
    split='val',               # the split whose documents are scored
    max_docs=0,                # 0 = every document of the split; else a seeded sample of this many
    seed=1337,                 # which documents the sample takes (the same for any tokenizer)
    dataset='',                # the dataset folder or name, if not the checkpoint's
    device='auto',             # 'auto' = cuda if available, else cpu
    dtype='bfloat16',          # autocast dtype on GPU; CPU scores in float32
)


def document_nll(model, seq, block_size, device, autocast):
    """-ln p(seq[i] | seq[:i]) for i = 1 .. len(seq) - 1, as a float64 CPU tensor: seq[0] is context
    only. Windows of block_size tokens; after the first, each advances by half a block and scores
    only its new targets."""
    n = len(seq) - 1
    out = torch.empty(n, dtype=torch.float64)
    done = 0
    while done < n:
        end = min(n, block_size if done == 0 else done + max(1, block_size // 2))
        lo = max(0, end - block_size)  # inputs seq[lo:end] predict seq[lo + 1:end + 1]
        x = seq[lo:end].to(device)[None]
        y = seq[lo + 1:end + 1].to(device)
        with torch.no_grad(), autocast:
            logits, _ = model(x)
        nll = F.cross_entropy(logits[0].float(), y, reduction='none')
        out[done:end] = nll[done - lo:].double().cpu()
        done = end
    return out


def load_dataset_files(data_dir, split):
    from loader import load_meta
    meta = load_meta(data_dir)
    docs_path = os.path.join(data_dir, f'{split}.docs.npy')
    bytes_path = os.path.join(data_dir, meta.get('token_bytes') or 'token_bytes.npy')
    missing = [p for p in (docs_path, bytes_path, os.path.join(data_dir, f'{split}.bin')) if not os.path.isfile(p)]
    if missing:
        raise UserError(f"{data_dir} lacks {', '.join(os.path.basename(p) for p in missing)}: prepare the dataset "
                        f"again with its prepare.py (bits per byte needs the document index and token byte counts)")
    tokens = np.memmap(os.path.join(data_dir, f'{split}.bin'), dtype=meta.get('dtype', 'uint16'), mode='r')
    return meta, tokens, np.load(docs_path), np.load(bytes_path)


def bits_per_byte(model, data_dir, split, max_docs, seed, device, autocast):
    """Score the chosen documents of data_dir's split whole (the docstring's definition): a dict with
    'overall' and 'per_source' entries (documents, tokens, bytes, nll_nats, bpb, loss_per_token,
    bytes_per_token) and what was scored. eval_bpb.py and eval_downstream.py both report this."""
    meta, tokens, docs, token_bytes = load_dataset_files(data_dir, split)
    if len(token_bytes) < model.config.vocab_size or meta['vocab_size'] > model.config.vocab_size:
        raise UserError(f"{data_dir} has a vocabulary of {meta['vocab_size']}, the checkpoint's model "
                        f"{model.config.vocab_size}: score a checkpoint on its own dataset (--dataset)")

    chosen = np.arange(len(docs))
    if max_docs and max_docs < len(docs):
        chosen = np.sort(np.random.default_rng(seed).choice(len(docs), size=max_docs, replace=False))
    sources = meta.get('sources') or ['all']
    context = meta.get('eos_id') if meta.get('eos_id') is not None else meta.get('bos_id')
    sums = {}  # source -> [nll nats, bytes, tokens, documents]
    t0 = time.time()
    for i in chosen:
        start, length, source = (int(v) for v in docs[i])
        before = int(tokens[start - 1]) if start > 0 else context
        seq = torch.from_numpy(np.concatenate(([before], tokens[start:start + length])).astype(np.int64))
        nll = document_nll(model, seq, model.config.block_size, device, autocast)
        nbytes = torch.from_numpy(token_bytes[seq[1:].numpy()].astype(np.int64))
        scored = nbytes > 0
        for key in ('all', sources[source] if source < len(sources) else str(source)):
            s = sums.setdefault(key, [0.0, 0, 0, 0])
            s[0] += nll[scored].sum().item()
            s[1] += int(nbytes.sum())
            s[2] += int(scored.sum())
            s[3] += 1
    if not sums:
        raise UserError(f"{data_dir} has no documents in its {split} split")

    def entry(s):
        return dict(documents=s[3], tokens=s[2], bytes=s[1], nll_nats=s[0],
                    bpb=s[0] / (math.log(2) * s[1]) if s[1] else None,
                    loss_per_token=s[0] / s[2] if s[2] else None, bytes_per_token=s[1] / s[2] if s[2] else None)
    return dict(split=split, dataset=data_dir, documents_chosen=len(chosen), max_docs=max_docs, seed=seed,
                tokenizer=meta.get('tokenizer'), seconds=round(time.time() - t0, 1), overall=entry(sums.pop('all')),
                per_source={k: entry(v) for k, v in sorted(sums.items())} if len(sources) > 1 else {})


def main(argv):
    c = Configurator(DEFAULTS).parse(argv)
    device, autocast = inference_device(c['device'], c['dtype'])
    ckpt = load_checkpoint(os.path.join(c['out_dir'], 'ckpt.pt'))
    from loader import resolve_dataset
    data_dir = resolve_dataset(c['dataset'] or ckpt['config']['dataset'])
    load_dataset_files(data_dir, c['split'])  # a dataset without the byte files fails before the model is built
    model = model_from_checkpoint(ckpt).to(device).eval()
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


def write_json(path, data):
    """path written whole or not at all: a .tmp file, then os.replace."""
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(path + '.tmp', path)


if __name__ == '__main__':
    run_cli(main)
