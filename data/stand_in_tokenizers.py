"""
Stand-in tokenizers built offline, for the tests and the throughput benchmark where the real ones
cannot be downloaded. They copy the real ones' structure, not their vocabularies:

- LLaMA-2 style: a transformers folder whose tokenizer.json has Llama-2's pipeline (SentencePiece-style
  BPE: normalizer prepends '▁' and turns spaces into '▁', no pre-tokenizer, byte fallback <0x00>..<0xFF>,
  <unk> <s> </s> as ids 0 1 2), trained here on the given text.
- GPT-2 style: a tiktoken ranks file (base64 token and rank a line, the format of r50k_base.tiktoken):
  the 256 bytes, then byte-level BPE merges trained here with GPT-2's regex; dataprep adds <|endoftext|>
  as the next id.

    python data/stand_in_tokenizers.py --out_dir /tmp/stand-in     # 32,000 and 50,257 ids, on the stdlib
"""
import argparse
import base64
import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def llama_style(texts, vocab_size, out_dir):
    """Train a LLaMA-2-style tokenizer on texts and save it as a transformers folder (out_dir)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tokenizer = Tokenizer(models.BPE(unk_token='<unk>', byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend('▁'), normalizers.Replace(' ', '▁')])
    tokenizer.decoder = decoders.Sequence([decoders.Replace('▁', ' '), decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(' ', 1, 0)])
    # trained on words (as SentencePiece trains on pieces); encoding then runs, as Llama-2's does, without one
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement='▁', prepend_scheme='never', split=True)
    special = ['<unk>', '<s>', '</s>'] + [f'<0x{b:02X}>' for b in range(256)]
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                             show_progress=False))
    tokenizer.pre_tokenizer = None
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token='<s>', eos_token='</s>', unk_token='<unk>')
    wrapped.save_pretrained(out_dir)
    return out_dir


def _byte_of_char():
    """GPT-2's byte-level alphabet (a printable character for each byte), inverted."""
    printable = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def gpt2_style_ranks(texts, vocab_size, path):
    """Train byte-level BPE with GPT-2's regex and write a tiktoken ranks file of vocab_size - 1 tokens
    (the last id is <|endoftext|>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's regex, then bytes
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size - 1, show_progress=False,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    byte_of = _byte_of_char()
    tokens = [bytes([b]) for b in range(256)]
    for left, right in json.loads(tokenizer.to_str())['model']['merges']:
        tokens.append(bytes(byte_of[c] for c in left + right))
    with open(path, 'w') as f:
        f.writelines(f'{base64.b64encode(t).decode()} {rank}\n' for rank, t in enumerate(tokens))
    return path


def stdlib_source(labelled=False):
    """The Source of data/python_stdlib (this Python's standard library sources); labelled: each
    document labelled 'library' or 'tests'."""
    spec = importlib.util.spec_from_file_location('python_stdlib_prepare', os.path.join(HERE, 'python_stdlib', 'prepare.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.stdlib_source(argparse.Namespace(max_docs=None), labelled=labelled)


def stdlib_texts():
    """The documents of data/python_stdlib, as text."""
    return [document[1] for document in stdlib_source().documents]


def stdlib_recipe(kind, out_dir):
    """The Recipe of data/stdlib_llama (kind 'llama') or data/stdlib_gpt2 (kind 'gpt2'): the documents
    of data/python_stdlib in two sources, 'library' and 'tests', tokenized by a stand-in of the real
    tokenizer (LLaMA-2-style, 32,000 ids, with BOS; GPT-2-style, 50,257 ids) trained on the training
    documents alone the first time, and kept in out_dir (tokenizer/ or gpt2_style.tiktoken)."""
    import dataprep
    from configurator import UserError
    path = os.path.join(out_dir, 'tokenizer' if kind == 'llama' else 'gpt2_style.tiktoken')
    packages = ['tokenizers', 'transformers' if kind == 'llama' else 'tiktoken']  # to train it, then to encode

    def source(args):
        made = stdlib_source(labelled=True)
        if not os.path.exists(path):
            missing = [name for name in packages if importlib.util.find_spec(name) is None]
            if missing:
                raise UserError(f"the {kind} stand-in tokenizer needs {' and '.join(missing)}: "
                                f"pip install {' '.join(missing)}")
            train = [text for split, text, _ in made.documents if split == 'train']
            print(f"training the {kind} stand-in tokenizer on {len(train):,} training documents -> {path}")
            if kind == 'llama':
                llama_style(train, 32000, path)
            else:
                gpt2_style_ranks(train, 50257, path)
        return made

    return dataprep.Recipe(
        title=f"Python standard library sources (library and tests), {kind} stand-in tokenizer",
        tokenizer={'kind': 'hf', 'name': path} if kind == 'llama' else {'kind': 'tiktoken', 'name': path},
        bos=kind == 'llama', default_source=source, out_dir=out_dir)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='build stand-in LLaMA-2-style and GPT-2-style tokenizers, '
                                                 'and the stdlib text as jsonl, for `python dataprep.py bench`')
    parser.add_argument('--out_dir', required=True)
    parser.add_argument('--llama_vocab', type=int, default=32000)
    parser.add_argument('--gpt2_vocab', type=int, default=50257)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    texts = stdlib_texts()
    with open(os.path.join(args.out_dir, 'stdlib.jsonl'), 'w') as f:
        f.writelines(json.dumps({'text': t}) + '\n' for t in texts)
    print(llama_style(texts, args.llama_vocab, os.path.join(args.out_dir, 'llama_style')))
    print(gpt2_style_ranks(texts, args.gpt2_vocab, os.path.join(args.out_dir, 'gpt2_style.tiktoken')))
    print(os.path.join(args.out_dir, 'stdlib.jsonl'))
