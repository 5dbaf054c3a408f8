"""
The English mix (data/english_mix/collect.py, data/english_mix_gpt2 and data/english_mix_llama), offline:
each source format's documents from small fixture text; the split by document; Debian packages built
here and read in Python; the archive's round trip; the prepared datasets' per-source statistics and
documents decoding back to their exact text, with tokenizers built here. No registry and no apt: where
a test needs apt-get, it is a script here that fails as a stale pin does.
"""
import gzip
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import dataprep
import helpers
from configurator import UserError

REPO = helpers.REPO
_spec = importlib.util.spec_from_file_location('english_mix_collect', os.path.join(REPO, 'data', 'english_mix', 'collect.py'))
collect = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(collect)
stand_in = helpers.stand_in_tokenizers()


def run(script, *args, env=None):
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()  # the progress bar, if it started, then the one line
    errors = [line for line in lines if line.startswith('error: ')]
    assert errors == lines[-1:] and 'Traceback' not in result.stderr, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


# ----------------------------------------------------------------------------------------------
# The formats, on fixture text

POD = """=head1 NAME

perlfixture - a B<bold> test of I<POD> E<lt>codesE<gt>

=head2 Links

See L<perlfunc/"open">, L<the manual|perlintro> and C<< $a <=> $b >>.X<index>

    verbatim B<stays> as it is
    second line

=over 4

=item *

First point with F</etc/passwd>.

=item Named item

Its text.

=back

=begin html

<p>dropped</p>

=end html

=for comment dropped too

=cut

sub code_not_documentation { 1 }

=pod

Back in POD: E<0x263A>, E<eacute>, S<non breaking> and Z<>nothing.
"""
POD_TEXT = """NAME

perlfixture - a bold test of POD <codes>

Links

See "open" in perlfunc, the manual and $a <=> $b.

    verbatim B<stays> as it is
    second line

* First point with /etc/passwd.

Named item

Its text.

Back in POD: \u263a, \u00e9, non breaking and nothing.
"""


def test_pod_becomes_text():
    assert collect.pod_to_text(POD) == POD_TEXT
    assert collect.pod_codes('C<< if (1 < 2) >> and B<unterminated') == 'if (1 < 2) and B<unterminated'
    assert collect.pod_codes('I<nested B<codes> here>') == 'nested codes here'


HTML = """<?xml version="1.0" encoding="UTF-8"?>
<html><head><title>T</title><style>p {}</style></head><body>
<div class="navheader"><table><tr><td><a href="x">Prev</a></td></tr></table><div>nested nav</div></div>
<div class="sect1"><h2 class="title">2.5. Querying   a Table</h2><p>
    To retrieve data, the table is
    <em>queried</em>: &lt;SELECT&gt; &amp; more.</p><pre class="programlisting">
SELECT *
  FROM weather;
</pre><table><tr><th>city</th><th>temp</th></tr><tr><td>San Francisco</td><td>46</td></tr></table>
<ul><li>one</li><li>two<br/>lines</li></ul><script>var x = 1;</script></div>
<div class="navfooter">Next</div></body></html>
"""
HTML_TEXT = """2.5. Querying a Table

To retrieve data, the table is queried: <SELECT> & more.

SELECT *
  FROM weather;

city | temp
San Francisco | 46

one
two
lines
"""


def test_html_becomes_text_without_navigation():
    assert collect.html_to_text(HTML, ('navheader', 'navfooter')) == HTML_TEXT
    assert collect.html_to_text('<html><head><title>only a title</title></head><body> </body></html>') == ''


# A dictd database as dict-gcide ships it: entries in file order, an index of base64 offsets and
# lengths, several headwords sharing an entry, the database's own '00-database-*' entries, source
# tags, {cross-references}, the ASCII codes of accented letters, and a stray Windows-1252 byte.
ENTRIES = [
    ('00-database-short', b'00-database-short\n   Fixture dictionary\n'),
    ('Abandon', b'Abandon \\A*ban"don\\ ([.a]*b[a^]n"d[u^]n), v. t. [imp. & p. p.\n'
                b'   {Abandoned}; p. pr. & vb. n. {Abandoning}.]\n'
                b'   1. To cast or drive out; to banish. [Obs.]\n      [1913 Webster]\n\n'
                b'            That he might . . . abandon them from him. --Udall.\n      [1913 Webster]\n'),
    ('Aam', b'Aam \\Aam\\ ([add]m or [aum]m), n. [D. aam.] A measure of liquids. [1913 Webster +PJC]\n'),
    ('Cafe', b'Cafe \\Caf[\'e]\\, n. A coffee house; na[eth]r; [ae]ther; f[=oo]d[2]; a quote \x92.\n   [WordNet 1.5]'),
]
ENTRY_TEXTS = [
    'Abandon \\A*ban"don\\ (\u0227*b\u0103n"d\u016dn), v. t. [imp. & p. p.\n'
    '   Abandoned; p. pr. & vb. n. Abandoning.]\n'
    '   1. To cast or drive out; to banish. [Obs.]\n\n'
    '            That he might . . . abandon them from him. --Udall.',
    'Aam \\Aam\\ ([add]m or \u00e4m), n. [D. aam.] A measure of liquids.',
    'Cafe \\Caf\u00e9\\, n. A coffee house; na\u00f0r; \u00e6ther; fo\u035eod[2]; a quote \u2019.',
]


def dictd(entries):
    """(index text, data bytes) of a dictd database; 'abandon' shares Abandon's entry."""
    data, index = b'', []

    def b64(n):
        digits = ''
        while True:
            digits = collect.B64[n % 64] + digits
            n //= 64
            if not n:
                return digits
    for word, entry in entries:
        index.append(f'{word}\t{b64(len(data))}\t{b64(len(entry))}')
        if word == 'Abandon':
            index.append(f'abandon\t{b64(len(data))}\t{b64(len(entry))}')
        data += entry + b'\n'
    return '\n'.join(sorted(index)) + '\n', data


def test_dictionary_entries_grouped_and_reduced(monkeypatch):
    index, data = dictd(ENTRIES)
    files = {'dict/fix.index': index.encode(), 'dict/fix.dict.dz': gzip.compress(data)}
    read = collect.dictd_documents('dict/fix.index', 'dict/fix.dict.dz', 'the fixture')
    # one entry a document: each headword's entry once, the database's own entry left out
    monkeypatch.setattr(collect, 'DICTIONARY_DOCUMENT_BYTES', 1)
    assert list(read(files)) == [('00001 Abandon', ENTRY_TEXTS[0] + '\n'), ('00002 Aam', ENTRY_TEXTS[1] + '\n'),
                                 ('00003 Cafe', ENTRY_TEXTS[2] + '\n')]
    # entries grouped until a group holds DICTIONARY_DOCUMENT_BYTES of the database; the last group may hold fewer
    monkeypatch.setattr(collect, 'DICTIONARY_DOCUMENT_BYTES', len(ENTRIES[1][1]) + 1)
    assert list(read(files)) == [('00001 Abandon', '\n\n'.join(ENTRY_TEXTS[:2]) + '\n'),
                                 ('00002 Cafe', ENTRY_TEXTS[2] + '\n')]


def test_dictionary_codes():
    assert collect.dictionary_text('l[u^]v, [=a]n, [^o]r, [.a]bout, [~n], [,c], [AE]sir, [root], [alpha], [-o]') == \
        'l\u016dv, \u0101n, \u00f4r, \u0227bout, \u00f1, \u00e7, \u00c6sir, \u221a, \u03b1, [-o]'
    assert collect.dictionary_text('y[y^] [=oo] [oo^] [Obs.] [1913 Webster + WordNet 1.5] kept') == \
        'yy\u0306 o\u035eo o\u035do [Obs.] kept'


# ----------------------------------------------------------------------------------------------
# Debian packages built here, and a collection of every format from them

def make_deb(path, package, version, files):
    """A .deb as dpkg-deb builds it: an ar archive of debian-binary, control.tar.xz, data.tar.xz."""
    def tar_xz(entries, link=None):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode='w:xz') as tar:
            for name, data in entries.items():
                info = tarfile.TarInfo('./' + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            if link:  # a symbolic link matching a pattern is no document
                info = tarfile.TarInfo('./' + link)
                info.type, info.linkname = tarfile.SYMTYPE, next(iter(entries))
                tar.addfile(info)
        return buffer.getvalue()
    control = f'Package: {package}\nVersion: {version}\nArchitecture: all\n'.encode()
    members = [('debian-binary', b'2.0\n'), ('control.tar.xz', tar_xz({'control': control})),
               ('data.tar.xz', tar_xz(files, link=next(iter(files)) + '.link.txt'))]
    with open(path, 'wb') as f:
        f.write(b'!<arch>\n')
        for name, data in members:
            f.write(f'{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n'.encode())
            f.write(data + (b'\n' if len(data) % 2 else b''))
    return path


INDEX, DATA = dictd(ENTRIES)
RST = {'usr/share/doc/fake/_sources/index.rst.txt': 'Fake\n====\n\n.. toctree::\n\n   guide/intro\n',
       'usr/share/doc/fake/_sources/guide/intro.rst.txt': 'Intro\n=====\n\nSome *prose* with ``code``: na\u00efve caf\u00e9.\n',
       'usr/share/doc/fake/_sources/guide/tabs.rst.txt': '\tTabs,\r\nCRLF lines   \r\n  and trailing spaces  ',
       'usr/share/doc/fake/_sources/empty.rst.txt': '  \n',  # no text: no document
       'usr/share/doc/fake/_sources/translations/zh_CN/index.rst.txt': '\u4e2d\u6587\n',  # excluded
       'usr/share/doc/fake/notes.txt': 'not a source file'}
FAKE_PACKAGES = {'fake-rst': '1.0-1', 'fake-pod': '2:5.36-1', 'fake-html': '15.1-0+deb12u1', 'fake-dict': '0.48',
                 'fake-code-a': '3.11-1', 'fake-code-b': '3.11-1'}
FAKE_FILES = {
    'fake-rst': {k: v.encode() for k, v in RST.items()},
    'fake-pod': {'usr/share/perl/pod/perlfixture.pod': POD.encode(),
                 'usr/share/perl/pod/perlemoji.pod': '=head1 Emoji \U0001f600 and \u4e2d\u6587\n\nC<text>\n'.encode()},
    'fake-html': {'usr/share/doc/pg/html/select.html': HTML.encode(),
                  'usr/share/doc/pg/html/empty.html': b'<html><body><div class="navheader">nav</div></body></html>',
                  'usr/share/doc/pg/html/intro.html': b'<html><body><p>Intro &ndash; text</p></body></html>'},
    'fake-dict': {'usr/share/dictd/fix.index': INDEX.encode(), 'usr/share/dictd/fix.dict.dz': gzip.compress(DATA)},
    'fake-code-a': {'usr/lib/python3.11/os.py': b'import sys\n\n\ndef f(x):\n    return x  # \xc3\xa9\n'},
    'fake-code-b': {'usr/lib/python3.11/json/__init__.py': b'"""JSON."""\n', 'usr/lib/python3.11/x.pyc': b'\0'},
}
FAKE_SOURCES = [
    collect.CorpusSource('rst_docs', 'reStructuredText', ('fake-rst',), ('usr/share/doc/fake/_sources/*.rst.txt',),
                         collect.plain_documents('usr/share/doc/fake/_sources/', '.txt'),
                         exclude=('usr/share/doc/fake/_sources/translations/*',)),
    collect.CorpusSource('pod_docs', 'POD', ('fake-pod',), ('usr/share/perl/pod/*.pod',),
                         collect.pod_documents('usr/share/perl/pod/')),
    collect.CorpusSource('html_docs', 'HTML', ('fake-html',), ('usr/share/doc/pg/html/*.html',),
                         collect.html_documents('usr/share/doc/pg/html/', ('navheader', 'navfooter'))),
    collect.CorpusSource('dictionary', 'dictd', ('fake-dict',), ('usr/share/dictd/fix.*',),
                         collect.dictd_documents('usr/share/dictd/fix.index', 'usr/share/dictd/fix.dict.dz', 'fixture')),
    collect.CorpusSource('code', 'Python', ('fake-code-a', 'fake-code-b'), ('usr/lib/python3.11/*.py',),
                         collect.plain_documents('usr/lib/python3.11/')),
]
EXPECTED_NAMES = {'rst_docs': ['guide/intro.rst', 'guide/tabs.rst', 'index.rst'],
                  'pod_docs': ['perlemoji', 'perlfixture'], 'html_docs': ['intro', 'select'],
                  'dictionary': ['00001 Abandon', '00002 Aam', '00003 Cafe'], 'code': ['json/__init__.py', 'os.py']}


@pytest.fixture(scope='module')
def debs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('debs')
    for package, version in FAKE_PACKAGES.items():
        make_deb(str(folder / f"{package}_{version.replace(':', '%3a')}_all.deb"), package, version, FAKE_FILES[package])
    return str(folder)


@pytest.fixture(scope='module')
def collection(debs):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(collect, 'DICTIONARY_DOCUMENT_BYTES', 1)  # an entry a document
        return collect.collect(debs, packages=FAKE_PACKAGES, sources=FAKE_SOURCES, log=lambda line: None)


@pytest.fixture(scope='module')
def archive(collection, tmp_path_factory):
    return collect.write_archive(str(tmp_path_factory.mktemp('archive') / 'mix.jsonl.zst'), *collection)


def test_a_deb_is_read_in_python(debs):
    path = collect.find_deb(debs, 'fake-pod', '2:5.36-1')
    assert os.path.basename(path) == 'fake-pod_2%3a5.36-1_all.deb'
    assert collect.deb_control(path)['Version'] == '2:5.36-1'
    assert collect.find_deb(debs, 'fake-pod', '2:5.37-1') is None
    assert collect.deb_files(path, ('usr/share/perl/pod/*.pod',)) == FAKE_FILES['fake-pod']


def test_collection_of_every_format(collection):
    header, records = collection
    assert header['packages'] == FAKE_PACKAGES and header['pinned']
    assert list(header['sources']) == [s.name for s in FAKE_SOURCES]
    # sources in order, documents by name, the empty and the excluded ones left out, every source in both splits
    assert [(r['source'], r['name']) for r in records] == [(s, n) for s, names in EXPECTED_NAMES.items() for n in names]
    for name, recorded in header['sources'].items():
        mine = [r for r in records if r['source'] == name]
        assert recorded['names'] == [r['name'] for r in mine]
        assert recorded['val'] == [r['name'] for r in mine if r['split'] == 'val'] and len(recorded['val']) == 1
        assert recorded['bytes'] == sum(len(r['text'].encode()) for r in mine)
    text = {(r['source'], r['name']): r['text'] for r in records}
    assert text['rst_docs', 'guide/tabs.rst'] == RST['usr/share/doc/fake/_sources/guide/tabs.rst.txt']  # as it is
    assert text['pod_docs', 'perlfixture'] == POD_TEXT
    assert text['html_docs', 'select'] == HTML_TEXT
    assert text['html_docs', 'intro'] == 'Intro \u2013 text\n'
    assert [text['dictionary', n] for n in EXPECTED_NAMES['dictionary']] == [t + '\n' for t in ENTRY_TEXTS]
    assert text['code', 'os.py'] == 'import sys\n\n\ndef f(x):\n    return x  # \u00e9\n'


def test_split_by_document_is_deterministic():
    documents = {f'doc{i}': 'x' * (100 + i) for i in range(200)}
    val = collect.split_documents('src', documents, 0.05)
    assert val == collect.split_documents('src', dict(reversed(list(documents.items()))), 0.05)  # order-free
    val_bytes = sum(len(documents[n]) for n in val)
    total = sum(map(len, documents.values()))
    assert 0.05 * total - 300 < val_bytes <= 0.05 * total
    assert val != collect.split_documents('other', documents, 0.05)  # the hash covers the source
    # a document too big for the budget is left in train; a source of two documents gives one to each split
    assert len(collect.split_documents('src', {'a': 'x' * 1000, 'b': 'y'}, 0.01)) == 1
    with pytest.raises(UserError, match='a train and a validation split need two'):
        collect.split_documents('src', {'a': 'x'})


def test_archive_round_trip_is_byte_identical(collection, archive, tmp_path):
    header, records = collect.read_archive(archive)
    assert list(records) == collection[1]
    assert header == {k: v for k, v in collection[0].items() if k != 'collect_seconds'}
    again = collect.write_archive(str(tmp_path / 'again.jsonl.zst'), *collection)
    assert open(again, 'rb').read() == open(archive, 'rb').read()


def test_damaged_archive_is_an_error(collection, tmp_path):
    header, records = collection
    changed = [dict(r, text=r['text'] + ' ') if r['name'] == 'os.py' else r for r in records]
    path = collect.write_archive(str(tmp_path / 'damaged.jsonl.zst'), header, changed)
    with pytest.raises(UserError, match="source code's 2 documents do not match"):
        list(collect.read_archive(path)[1])
    cut = tmp_path / 'cut.jsonl.zst'  # an upload cut short
    cut.write_bytes(open(path, 'rb').read()[:os.path.getsize(path) * 2 // 3])
    with pytest.raises(UserError, match='damaged'):
        list(collect.read_archive(str(cut))[1])
    (tmp_path / 'plain.jsonl.zst').write_bytes(b'{"text": "no header"}\n')
    with pytest.raises(UserError, match='not an english_mix archive'):
        collect.read_archive(str(tmp_path / 'plain.jsonl.zst'))


def test_real_sources_are_pinned():
    used = {p for source in collect.SOURCES for p in source.packages}
    assert used == set(collect.PACKAGES)
    assert len({s.name for s in collect.SOURCES}) == len(collect.SOURCES) >= 5


# ----------------------------------------------------------------------------------------------
# The prepare.py scripts on the fixture archive; the collection's errors

# Text the tokenizers must give back exactly: the fixture archive's documents (dictionary codes made
# characters, combining marks, CRLF, tabs, emoji, CJK, a Windows-1252 quote) are all of it.
DATASETS = {'tiktoken': 'english_mix_gpt2', 'hf': 'english_mix_llama'}


@pytest.fixture(scope='module')
def tokenizers(collection, tmp_path_factory):
    """Stand-ins built here, small (400 ids) so that most non-ASCII text goes through byte fallback;
    the real tokenizers, where data/tokenizers holds them."""
    texts = [r['text'] for r in collection[1]] * 2
    root = tmp_path_factory.mktemp('tokenizers')
    return {'tiktoken': stand_in.gpt2_style_ranks(texts, 400, str(root / 'gpt2_style.tiktoken')),
            'hf': stand_in.llama_style(texts, 400, str(root / 'llama_style'))}


REAL = {'tiktoken': os.path.join(REPO, 'data', 'tokenizers', 'gpt2'),
        'hf': os.path.join(REPO, 'data', 'tokenizers', 'llama2')}
TOKENIZER_CASES = [('tiktoken', 'stand-in'), ('hf', 'stand-in')] + [
    pytest.param(kind, 'real', marks=pytest.mark.skipif(not os.path.exists(REAL[kind]),
                                                        reason=f'{REAL[kind]} not built'))
    for kind in ('tiktoken', 'hf')]


@pytest.mark.parametrize('kind,which', TOKENIZER_CASES)
def test_prepared_documents_decode_to_their_exact_text(collection, archive, tokenizers, tmp_path, kind, which):
    out = tmp_path / 'out'
    tokenizer_path = tokenizers[kind] if which == 'stand-in' else REAL[kind]
    result = run(os.path.join('data', DATASETS[kind], 'prepare.py'), '--input', archive, '--tokenizer', tokenizer_path,
                 '--out_dir', out, '--num_proc', 1)
    assert result.returncode == 0, result.stderr
    meta = pickle.load(open(out / 'meta.pkl', 'rb'))
    header, records = collection
    names = list(header['sources'])
    assert meta['sources'] == names and meta['tokenizer']['kind'] == kind
    assert meta['collection']['sources'] == header['sources'] and meta['collection']['archive'] == archive
    tokenizer = dataprep.load_tokenizer(meta['tokenizer'])
    for split in dataprep.SPLITS:
        mine = [r for r in records if r['split'] == split]
        ids = np.fromfile(out / f'{split}.bin', dtype=np.uint16)
        docs = np.load(out / f'{split}.docs.npy')
        assert [names[s] for s in docs[:, 2]] == [r['source'] for r in mine]
        for (start, length, _), record in zip(docs, mine):
            doc = ids[start:start + length].tolist()
            assert doc[-1] == meta['eos_id']
            doc = doc[1:-1] if meta['bos_id'] is not None else doc[:-1]
            assert meta['bos_id'] is None or ids[start] == meta['bos_id']
            assert tokenizer.decode(doc) == record['text'], (record['source'], record['name'])
        # per-source statistics: every source in every split, its bytes those of its documents
        for name in names:
            stats = meta['stats'][split][name]
            assert stats['documents'] == sum(r['source'] == name for r in mine)
            assert stats['bytes'] == sum(len(r['text'].encode()) for r in mine if r['source'] == name)
        assert meta['stats'][split]['all']['tokens'] == len(ids)


def test_both_tokenizers_read_the_same_documents(archive, tokenizers, tmp_path):
    metas = {}
    for kind, dataset in DATASETS.items():
        result = run(os.path.join('data', dataset, 'prepare.py'), '--input', archive, '--tokenizer', tokenizers[kind],
                     '--out_dir', tmp_path / kind, '--num_proc', 2, '--max_docs', 1)
        assert result.returncode == 0, result.stderr
        metas[kind] = pickle.load(open(tmp_path / kind / 'meta.pkl', 'rb'))
    gpt2, llama = metas['tiktoken'], metas['hf']
    for split in dataprep.SPLITS:  # --max_docs 1: one document of each source in each split
        for stats in (gpt2['stats'][split], llama['stats'][split]):
            assert all(stats[name]['documents'] == 1 for name in gpt2['sources'])
        assert {n: (s['documents'], s['bytes']) for n, s in gpt2['stats'][split].items()} == \
            {n: (s['documents'], s['bytes']) for n, s in llama['stats'][split].items()}
    assert gpt2['collection'] == llama['collection'] and gpt2['collection']['max_docs'] == 1
    table = collect.bytes_per_token_table([str(tmp_path / 'tiktoken'), str(tmp_path / 'hf')])
    lines = table.splitlines()
    assert lines[0] == '| source | documents | bytes | tiktoken tokens | tiktoken bytes/token | hf tokens | hf bytes/token |'
    assert [line.split(' | ')[0][2:] for line in lines[2:]] == gpt2['sources'] + ['all']
    all_row = lines[-1].split(' | ')
    text_tokens = gpt2['splits']['train']['tokens'] + gpt2['splits']['val']['tokens'] - 10  # less an EOS a document
    assert all_row[1:4] == ['10', f"{sum(gpt2['stats'][s]['all']['bytes'] for s in dataprep.SPLITS):,}", f'{text_tokens:,}']


def test_prepare_errors_are_one_line(archive, collection, tokenizers, tmp_path):
    gpt2 = os.path.join('data', 'english_mix_gpt2', 'prepare.py')
    result = run(gpt2, '--input', tmp_path / 'missing.jsonl.zst', '--tokenizer', tokenizers['tiktoken'])
    assert_one_line_error(result, 'no english_mix archive at', 'collect.py')
    result = run(gpt2, '--input', archive, '--val_fraction', 0.1, '--tokenizer', tokenizers['tiktoken'])
    assert_one_line_error(result, '--val_fraction does not apply')
    result = run(gpt2, '--input', archive, '--streaming', '--tokenizer', tokenizers['tiktoken'])
    assert_one_line_error(result, '--streaming does not apply')
    result = run(gpt2, '--input', archive, '--tokenizer', tmp_path / 'no-tokenizer' / 'r50k_base.tiktoken')
    assert_one_line_error(result, 'no tokenizer at', 'data/tokenizers/build.py')
    # a hub id is no local path: the check of the tokenizer lets it pass (and the archive is what is missing)
    result = run(os.path.join('data', 'english_mix_llama', 'prepare.py'), '--input', tmp_path / 'missing.jsonl.zst',
                 '--tokenizer', 'meta-llama/Llama-2-7b-hf')
    assert_one_line_error(result, 'no english_mix archive at')
    header, records = collection
    damaged = collect.write_archive(str(tmp_path / 'damaged.jsonl.zst'), header, records[:-1])
    out = tmp_path / 'out'
    result = run(gpt2, '--input', damaged, '--tokenizer', tokenizers['tiktoken'], '--out_dir', out, '--num_proc', 1)
    assert_one_line_error(result, 'the archive is damaged')
    assert not (out / 'meta.pkl').exists() and not list(out.glob('*.bin'))  # nothing looks complete


def test_stale_or_missing_package_is_one_line(tmp_path):
    """collect.py with an empty .deb folder: an apt-get that cannot find the pinned version (a stale
    pin, or apt's lists never updated), then no apt-get at all."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    apt_get = bin_dir / 'apt-get'
    apt_get.write_text("#!/bin/sh\necho \"E: Can't find a source to download version '$2'\" >&2\nexit 100\n")
    apt_get.chmod(0o755)
    debs, out = tmp_path / 'debs', tmp_path / 'mix.jsonl.zst'
    script = os.path.join('data', 'english_mix', 'collect.py')
    first = sorted(collect.PACKAGES)[0]
    result = run(script, '--debs', debs, '--out', out, env=dict(os.environ, PATH=str(bin_dir)))
    assert_one_line_error(result, f'apt-get download {first}={collect.PACKAGES[first]} failed',
                          "Can't find a source", 'apt-get update', '--latest')
    empty = tmp_path / 'empty'
    empty.mkdir()
    result = run(script, '--debs', debs, '--out', out, env=dict(os.environ, PATH=str(empty)))
    assert_one_line_error(result, 'no apt-get to download it', f'apt-get download {first}=', '--input')
    assert not out.exists()


# -----------------------------------------------------------------------------
# README.md's numbers: from the committed manifest (collect.py --manifest), and the manifest from the
# archive and the prepared datasets where this machine has them

def manifest():
    import json
    with open(collect.MANIFEST) as f:
        return json.load(f)


def test_readme_numbers_are_the_manifest_s():
    m = manifest()
    with open(os.path.join(REPO, 'data', 'english_mix', 'README.md')) as f:
        readme = f.read()
    for name, s in m['sources'].items():
        row = next(line for line in readme.splitlines() if line.startswith(f'| `{name}` | `'))
        assert f"| {s['documents']:,} | {s['bytes']:,} | {s['val_documents']:,} | {s['val_bytes']:,} |" in row, name
        assert f"| `{name}` | `{s['sha256']}` |" in readme
    total = {k: sum(s[k] for s in m['sources'].values()) for k in ('documents', 'bytes', 'val_documents', 'val_bytes')}
    assert f"| {total['documents']:,} | {total['bytes']:,} | {total['val_documents']:,} | {total['val_bytes']:,} |" in readme
    assert f"{len(m['packages'])} packages" in readme
    for package, version in m['packages'].items():
        assert f"`{package}`" in readme and version in readme
    flat = ' '.join(readme.split())
    assert f"is {m['archive']['bytes']:,} bytes with SHA-256 `{m['archive']['sha256']}`" in flat
    assert len(m['sources']) == 7 and f"about {total['bytes'] / 1e6:.0f} MB of English text from seven sources" in flat
    tokens = sorted(d['stats']['train']['all']['tokens'] + d['stats']['val']['all']['tokens'] for d in m['datasets'].values())
    assert f"It is about {total['bytes'] / 1e6:.0f} MB, {tokens[0] / 1e6:.0f} to {tokens[-1] / 1e6:.0f} million tokens" in flat
    metas = [(name, d) for name, d in m['datasets'].items()]
    assert collect.bytes_per_token_table(metas=metas) in readme
    # the shares of the text the README gives by kind
    share = lambda *names: 100 * sum(m['sources'][n]['bytes'] for n in names) / total['bytes']
    assert f"**technical prose** ({share('linux_docs', 'python_docs', 'perl_docs', 'postgresql_docs', 'git_docs'):.0f}% of the bytes)" in flat
    assert f"**a dictionary** ({share('dictionary'):.0f}%)" in flat and f"**code** ({share('python_code'):.0f}%)" in flat


@pytest.mark.skipif(not (os.path.exists(collect.DEFAULT_ARCHIVE) and all(
    os.path.exists(os.path.join(d, 'meta.pkl')) for d in collect.DATASETS)),
    reason="the English mix is not collected and prepared here (python data/english_mix_gpt2/prepare.py and "
           "data/english_mix_llama/prepare.py collect it from Debian's archive)")
def test_the_manifest_is_what_the_archive_and_datasets_give():
    assert collect.make_manifest() == manifest()
