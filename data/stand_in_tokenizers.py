"""
Stand-in tokenizers trained in seconds, for the tests: they copy the real ones' structure, not their
vocabularies (the real ones, for every dataset, are data/tokenizers/build.py's):

- LLaMA-2 style: a transformers folder whose tokenizer.json has Llama-2's pipeline (SentencePiece-style
  BPE: normalizer prepends '▁' and turns spaces into '▁', no pre-tokenizer, byte fallback <0x00>..<0xFF>,
  <unk> <s> </s> as ids 0 1 2), trained here on the given text.
- GPT-2 style: a tiktoken ranks file (base64 token and rank a line, the format of r50k_base.tiktoken):
  the 256 bytes, then byte-level BPE merges trained here with GPT-2's regex; dataprep adds <|endoftext|>
  as the next id.
"""
import base64
import json


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
