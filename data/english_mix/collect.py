"""
The English mix: a mixed-source English text collection that stands in for SlimPajama offline, made
from Debian packages (the Linux kernel's, Python's, Perl's, PostgreSQL's and git's manuals, and the
1913 Webster's dictionary) and the Python standard library's code. It is collected once into one
deterministic archive, english_mix.jsonl.zst here, split into train and validation by document;
data/english_mix_gpt2/prepare.py and data/english_mix_llama/prepare.py tokenize that archive, so the
two tokenizers see the same documents in the same split. See README.md.

    python data/english_mix/collect.py                      # apt-get download the pinned packages -> english_mix.jsonl.zst
    python data/english_mix/collect.py --debs ~/debs        # from .deb files already there (no apt-get needed)
    python data/english_mix/collect.py --out /tmp/em.jsonl.zst --latest   # Debian's current versions, not the pins
    python data/english_mix/collect.py --table              # bytes per token per source of the prepared datasets

The archive is zstd-compressed JSON lines: a header line (the packages and their versions, and for each
source its documents' names, the validation documents, bytes and a SHA-256 of its text), then one
line a document, {"source", "name", "split", "text"}, sources in SOURCES order, documents by name.
A .deb is read in Python (ar, then its data.tar), so only the download needs Debian's tools.
"""
import argparse
import collections
import dataclasses
import fnmatch
import glob
import gzip
import hashlib
import html.entities
import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import unicodedata
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)  # for dataprep and configurator
import dataprep  # noqa: E402
from configurator import UserError  # noqa: E402
from loader import load_meta  # noqa: E402

FORMAT = 'english_mix'
FORMAT_VERSION = 1
DEFAULT_ARCHIVE = os.path.join(HERE, 'english_mix.jsonl.zst')
DEFAULT_DEBS = os.path.join(HERE, 'debs')  # the downloaded .deb files (git-ignored)
VAL_FRACTION = 0.03  # of each source's bytes, in whole documents
DICTIONARY_DOCUMENT_BYTES = 8000  # consecutive dictionary entries are grouped into documents of at least this
ZSTD_LEVEL = 10  # 27 MB for the whole collection, in seconds (xz -6: 23 MB, in minutes)

# Debian 12 (bookworm), main. A pin that Debian's archive has moved past is a one-line error (see fetch).
PACKAGES = {
    'linux-doc-6.1': '6.1.176-1',
    'python3.11-doc': '3.11.2-6+deb12u8',
    'perl-doc': '5.36.0-7+deb12u3',
    'postgresql-doc-15': '15.18-0+deb12u1',
    'git-doc': '1:2.39.5-0+deb12u3',
    'dict-gcide': '0.48.5+nmu2',
    'libpython3.11-minimal': '3.11.2-6+deb12u8',
    'libpython3.11-stdlib': '3.11.2-6+deb12u8',
}


# ----------------------------------------------------------------------------------------------
# Formats: the files of a source -> its documents, (name, text) each, markup reduced but kept as text

def decode(data, what):
    """UTF-8 text; the few files (or dictionary entries) in Windows-1252 are read as such."""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        try:
            return data.decode('cp1252')
        except UnicodeDecodeError:
            raise UserError(f"{what} is neither UTF-8 nor Windows-1252 text") from None


def relative(path, prefix, suffix=''):
    """path less prefix and suffix: a document's name."""
    assert path.startswith(prefix) and path.endswith(suffix), (path, prefix, suffix)
    return path[len(prefix):len(path) - len(suffix)]


def plain_documents(prefix, strip_suffix=''):
    """Each file a document named by its path less prefix and strip_suffix, its text as it is
    (reStructuredText, AsciiDoc, Python): formats written to be read as text."""
    def read(files):
        for path in sorted(files):
            yield relative(path, prefix, strip_suffix), decode(files[path], path)
    return read


# POD (perlpod): commands become their text (headings, items) or go (=over, =back, =for, =begin..=end
# of other formats, =cut..=pod code); formatting codes B<> I<> C<> F<> S<> become their text, L<> its
# link text, E<> its character, X<> and Z<> nothing; verbatim (indented) paragraphs stay as they are.

POD_ENTITIES = {'lt': '<', 'gt': '>', 'verbar': '|', 'sol': '/'}
POD_CODE = re.compile(r'([A-Z])(<+)')


def _pod_code(letter, content):
    if letter in 'XZ':
        return ''
    if letter == 'E':
        name = content.strip()
        if name in POD_ENTITIES:
            return POD_ENTITIES[name]
        if re.fullmatch(r'0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*', name):
            return chr(int(name, 0) if not name.startswith('0') or name[1:2] in 'xX' else int(name, 8))
        if name in html.entities.name2codepoint:
            return chr(html.entities.name2codepoint[name])
        return f'E<{content}>'
    if letter == 'L':
        if '|' in content:
            return content.split('|', 1)[0]
        if '/' in content and '://' not in content:  # L<name/"section"> reads as "section" in name
            name, section = content.split('/', 1)
            section = section.strip('"')
            return f'"{section}" in {name}' if name else f'"{section}"'
        return content.strip('"')
    return content  # B I C F S, and codes perlpod does not define


def _pod_parse(text, i, close):
    """(rendered text, index after it) from text[i] to the closing delimiter close (None: the end;
    '>': one angle bracket; a regex: whitespace then several), or None where close never comes."""
    parts = []
    while i < len(text):
        if close == '>' and text[i] == '>':
            return ''.join(parts), i + 1
        if close is not None and close != '>':
            end = close.match(text, i)
            if end:
                return ''.join(parts), end.end()
        code = POD_CODE.match(text, i)
        if code:
            letter, brackets = code.group(1), len(code.group(2))
            if brackets == 1:
                inner = _pod_parse(text, code.end(), '>')
            elif code.end() < len(text) and text[code.end()].isspace():
                inner = _pod_parse(text, code.end(), re.compile(r'\s+' + '>' * brackets))
            else:  # 'C<<' not followed by whitespace: a one-bracket code holding '<'
                inner = _pod_parse(text, i + 2, '>')
            if inner is not None:
                content, i = inner
                parts.append(_pod_code(letter, content.strip() if brackets > 1 else content))
                continue
        parts.append(text[i])
        i += 1
    return (''.join(parts), i) if close is None else None


def pod_codes(text):
    """text with its POD formatting codes rendered (an unterminated code stays as it is)."""
    return _pod_parse(text, 0, None)[0]


def pod_to_text(pod):
    out, bullet = [], ''
    in_pod, skip_until = True, None  # .pod files begin in POD; =cut starts code, the next command ends it
    for paragraph in re.split(r'\n[ \t]*\n', pod.replace('\r\n', '\n')):
        paragraph = paragraph.strip('\n')
        if not paragraph.strip():
            continue
        command = re.match(r'=([a-zA-Z0-9]+)[ \t]*(.*)', paragraph, re.S)
        if skip_until:
            if command and command.group(1) == 'end' and command.group(2).split()[:1] == [skip_until]:
                skip_until = None
            continue
        if command:
            in_pod = command.group(1) != 'cut'
            name, rest = command.group(1), command.group(2).strip()
            if name.startswith('head'):
                out.append(pod_codes(rest))
            elif name == 'item':
                if rest in ('', '*', 'o'):
                    bullet = '* '
                else:
                    out.append(pod_codes(rest))
            elif name == 'begin' and rest and rest.split()[0] != 'text':
                skip_until = rest.split()[0]
            continue  # =over =back =pod =cut =encoding =for =begin text =end
        if not in_pod:
            continue
        if paragraph[0] in ' \t':  # verbatim: no formatting codes
            out.append(paragraph)
        else:
            out.append(bullet + pod_codes(paragraph))
        bullet = ''
    return '\n\n'.join(out) + '\n' if out else ''


def pod_documents(prefix):
    def read(files):
        for path in sorted(files):
            yield relative(path, prefix, '.pod'), pod_to_text(decode(files[path], path))
    return read


# HTML: the text of <body>, less navigation (the elements of skip_classes), scripts and styles;
# blocks separated by blank lines, <pre> as it is, other whitespace collapsed, a table's cells by ' | '

class _HTMLText(html.parser.HTMLParser):
    BLOCKS = {'address', 'article', 'aside', 'blockquote', 'dd', 'div', 'dl', 'dt', 'figcaption', 'figure',
              'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p',
              'pre', 'section', 'table', 'tr', 'ul', 'caption'}
    LINES = {'br', 'li', 'tr', 'dt', 'dd'}  # one line break, not a blank line
    SKIP = {'head', 'script', 'style', 'title'}
    VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'wbr'}

    def __init__(self, skip_classes):
        super().__init__(convert_charrefs=True)
        self.skip_classes = set(skip_classes)
        self.parts, self.pending, self.pre = [], 0, 0
        self.skipping, self.skip_tag, self.skip_depth = False, None, 0
        self.cell, self.pre_start = False, False

    def _break(self, lines):
        if self.parts:
            self.pending = max(self.pending, lines)

    def handle_starttag(self, tag, attrs):
        if self.skipping:
            if tag == self.skip_tag and tag not in self.VOID:
                self.skip_depth += 1
            return
        classes = set((dict(attrs).get('class') or '').split())
        if tag in self.SKIP or classes & self.skip_classes:
            if tag not in self.VOID:
                self.skipping, self.skip_tag, self.skip_depth = True, tag, 1
            return
        if tag in self.BLOCKS:
            self._break(1 if tag in self.LINES else 2)
        elif tag == 'br':
            self._break(1)
        if tag == 'pre':
            self.pre += 1
            self.pre_start = True  # a newline right after <pre> is not content (HTML's rule)
        if tag in ('td', 'th'):
            if self.cell:
                self.parts.append(' | ')
            self.cell = True
        elif tag == 'tr':
            self.cell = False

    def handle_endtag(self, tag):
        if self.skipping:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skipping = False
            return
        if tag == 'pre':
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCKS:
            self._break(1 if tag in self.LINES else 2)

    def handle_data(self, data):
        if self.skipping:
            return
        if self.pre_start:
            data = data[1:] if data.startswith('\n') else data
            self.pre_start = False
        if not self.pre:
            data = re.sub(r'\s+', ' ', data)
            at_line_start = self.pending or not self.parts or self.parts[-1].endswith('\n')
            if at_line_start:
                data = data.lstrip(' ')
            if not data:
                return
        if self.pending:
            self.parts.append('\n' * self.pending)
            self.pending = 0
        self.parts.append(data)

    def text(self):
        text = ''.join(self.parts)
        text = re.sub(r'[ \t]+\n', '\n', text)
        return re.sub(r'\n{3,}', '\n\n', text).strip('\n') + '\n'


def html_to_text(page, skip_classes=()):
    parser = _HTMLText(skip_classes)
    parser.feed(page)
    parser.close()
    text = parser.text()
    return text if text.strip() else ''


def html_documents(prefix, skip_classes):
    def read(files):
        for path in sorted(files):
            yield relative(path, prefix, '.html'), html_to_text(decode(files[path], path), skip_classes)
    return read


# The dictd database of the GCIDE (the 1913 Webster's with later additions): entries as the index
# spans them, in the file's (alphabetical) order, grouped into documents of DICTIONARY_DOCUMENT_BYTES
# or more. Reduced markup: source tags ('[1913 Webster]', '[PJC]', '[WordNet 1.5]'...) go; {braces}
# around cross-references and italics go; the ASCII codes of letters the dictionary prints with
# diacritics ('[a^]' a-breve, '[=e]' e-macron, '[ae]', '[eth]'...) become those characters; the
# syllable notation of the headword (\A*ban"don\) stays, as do codes without a sure reading ('[-o]').

B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
_PROVENANCE = (r'(?:1913 Webster|Webster 1913 Suppl\.|WordNet 1\.[56]|WordNet sense \d+|PJC\.?|RDH|RHUD|MI11|AS'
               r'|Century Dict\. 1906)')
SOURCE_TAG = rf'\[[ \t]*\+?[ \t]*{_PROVENANCE}(?:[ \t]*\+?[ \t]*{_PROVENANCE})*[ \t]*\]'
_DIACRITICS = {'^': '\u0306', '=': '\u0304', "'": '\u0301', '`': '\u0300', '"': '\u0308', '~': '\u0303'}
_NAMED = {'ae': 'æ', 'AE': 'Æ', 'oe': 'œ', 'OE': 'Œ', 'eth': 'ð', 'thorn': 'þ', 'yogh': 'ȝ', 'aum': 'ä',
          'imac': 'ī', '=ae': 'ǣ', '=oo': 'o\u035eo', 'oo^': 'o\u035do', ',c': 'ç', '*a': 'å', '*u': 'ů',
          'deg': '°', 'sect': '§', 'pounds': '£', 'root': '√', 'sharp': '♯', 'flat': '♭',
          'alpha': 'α', 'beta': 'β', 'gamma': 'γ', 'delta': 'δ', 'Delta': 'Δ', 'theta': 'θ', 'iota': 'ι',
          'pi': 'π', 'tau': 'τ', 'phi': 'φ'}


def _character(code):
    """The character of a dictionary code (inside the brackets), or None."""
    if code in _NAMED:
        return _NAMED[code]
    if len(code) == 2:
        if code[1] == '^' and code[0] in 'aeiouyAEIOUY':  # the breve of short vowels (l[u^]v: luv)
            return unicodedata.normalize('NFC', code[0] + _DIACRITICS['^'])
        if code[0] == '^' and code[1] in 'aeiouAEIOU':
            return unicodedata.normalize('NFC', code[1] + '\u0302')
        if code[0] == '.' and code[1] in 'aeiouAEIOU':  # Webster's obscure vowels
            return unicodedata.normalize('NFC', code[1] + '\u0307')
        if code[0] in _DIACRITICS and code[0] != '^' and code[1].isalpha():
            return unicodedata.normalize('NFC', code[1] + _DIACRITICS[code[0]])
    return None


def dictionary_text(entry):
    entry = re.sub(rf'(?m)^[ \t]*{SOURCE_TAG}(?:[ \t]*{SOURCE_TAG})*[ \t]*(?:\n|\Z)', '', entry)
    entry = re.sub(rf'[ \t]*{SOURCE_TAG}', '', entry)
    entry = entry.replace('{', '').replace('}', '')
    return re.sub(r'\[([^\[\]\s]{1,6})\]', lambda m: _character(m.group(1)) or m.group(0), entry)


def _base64(number):
    value = 0
    for c in number:
        value = value * 64 + B64.index(c)
    return value


def dictd_entries(index, data):
    """(offset, bytes) of the entries of a dictd database (index text, uncompressed data), in file
    order, each once however many headwords share it; the database's own '00-database-*' entries left out."""
    spans = {}
    for line_number, line in enumerate(index.splitlines(), 1):
        fields = line.split('\t')
        if len(fields) < 3:
            raise UserError(f"dictd index line {line_number} is not 'headword<TAB>offset<TAB>length'")
        span = (_base64(fields[1]), _base64(fields[2]))
        spans.setdefault(span, []).append(fields[0])
    return [(offset, data[offset:offset + length]) for (offset, length), words in sorted(spans.items())
            if not all(word.startswith('00-') for word in words)]


def dictd_documents(index_path, data_path, what):
    def read(files):
        raw = files[data_path]
        data = gzip.decompress(raw) if data_path.endswith('.dz') else raw  # dictzip is gzip
        group, size, number = [], 0, 0
        entries = dictd_entries(decode(files[index_path], index_path), data)
        for i, (offset, entry) in enumerate(entries):
            text = dictionary_text(decode(entry, f'{what} entry at byte {offset}')).strip('\n')
            if text.strip():
                group.append(text)
                size += len(entry)
            if group and (size >= DICTIONARY_DOCUMENT_BYTES or i == len(entries) - 1):
                number += 1
                headword = group[0].split('\n', 1)[0].split(' \\', 1)[0].strip()
                yield f'{number:05d} {headword}', '\n\n'.join(group) + '\n'
                group, size = [], 0
    return read


# ----------------------------------------------------------------------------------------------
# The sources

@dataclasses.dataclass
class CorpusSource:
    name: str              # its label in meta['sources'] and meta['stats']
    what: str              # one line, for the README and the header
    packages: tuple        # the Debian packages it reads
    members: tuple         # glob patterns of the files it reads in them (fnmatch)
    read: Callable         # {path: bytes} -> (name, text) documents
    exclude: tuple = ()    # glob patterns of files it leaves out (the ones not in English)


PG = 'usr/share/doc/postgresql-doc-15/html/'
SOURCES = [
    CorpusSource('linux_docs', "the Linux kernel's documentation (reStructuredText)", ('linux-doc-6.1',),
                 ('usr/share/doc/linux-doc-6.1/html/_sources/*.rst.txt',),
                 plain_documents('usr/share/doc/linux-doc-6.1/html/_sources/', '.txt'),
                 exclude=('usr/share/doc/linux-doc-6.1/html/_sources/translations/*',)),
    CorpusSource('python_docs', "Python 3.11's documentation (reStructuredText)", ('python3.11-doc',),
                 ('usr/share/doc/python3.11/html/_sources/*.rst.txt',),
                 plain_documents('usr/share/doc/python3.11/html/_sources/', '.txt')),
    CorpusSource('perl_docs', "Perl 5.36's manual pages (POD, as text)", ('perl-doc',),
                 ('usr/share/perl/5.36.0/pod/*.pod',), pod_documents('usr/share/perl/5.36.0/pod/'),
                 exclude=tuple(f'usr/share/perl/5.36.0/pod/perl{lang}.pod' for lang in ('cn', 'jp', 'ko', 'tw'))),
    CorpusSource('postgresql_docs', "PostgreSQL 15's manual (HTML, as text)", ('postgresql-doc-15',),
                 (PG + '*.html',), html_documents(PG, ('navheader', 'navfooter', 'toc'))),
    CorpusSource('git_docs', "git's manual pages and guides (AsciiDoc)", ('git-doc',),
                 ('usr/share/doc/git-doc/*.txt',), plain_documents('usr/share/doc/git-doc/', '.txt')),
    CorpusSource('dictionary', "the GCIDE: Webster's Revised Unabridged Dictionary (1913) with later additions",
                 ('dict-gcide',), ('usr/share/dictd/gcide.index', 'usr/share/dictd/gcide.dict.dz'),
                 dictd_documents('usr/share/dictd/gcide.index', 'usr/share/dictd/gcide.dict.dz', 'the GCIDE')),
    CorpusSource('python_code', "the Python 3.11 standard library's sources (code)",
                 ('libpython3.11-minimal', 'libpython3.11-stdlib'), ('usr/lib/python3.11/*.py',),
                 plain_documents('usr/lib/python3.11/')),
]


# ----------------------------------------------------------------------------------------------
# Debian packages: found in a folder, or fetched with apt-get download; read in Python

def ar_members(path):
    """{name: bytes} of the members of a .deb (an ar archive)."""
    members = {}
    with open(path, 'rb') as f:
        if f.read(8) != b'!<arch>\n':
            raise UserError(f"{path} is not a Debian package (no ar archive): delete it and collect again")
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name, size = header[:16].decode('ascii').strip().rstrip('/'), int(header[48:58])
            members[name] = f.read(size)
            if size % 2:
                f.read(1)
    return members


def _tar(members, stem, path):
    """The tarfile of the member stem.tar[.xz|.gz|.bz2|.zst] of a .deb."""
    for name, data in members.items():
        if name == stem + '.tar' or name.startswith(stem + '.tar.'):
            if name.endswith('.zst'):
                try:
                    import zstandard
                except ImportError:
                    raise UserError(f"{path} holds {name}: reading it needs zstandard: pip install zstandard") from None
                data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
            return tarfile.open(fileobj=io.BytesIO(data), mode='r:*')
    raise UserError(f"{path} has no {stem}.tar member: not a Debian package")


def deb_control(path, members=None):
    """The fields of a .deb's control file ({'Package': ..., 'Version': ...})."""
    members = members or ar_members(path)
    with _tar(members, 'control', path) as tar:
        for member in tar:
            if member.name.lstrip('./') == 'control':
                text = tar.extractfile(member).read().decode('utf-8')
                return dict(re.findall(r'(?m)^([A-Za-z-]+):[ \t]*(.*)$', text))
    raise UserError(f"{path} has no control file: not a Debian package")


def deb_files(path, patterns, exclude=()):
    """{path: bytes} of the regular files of a .deb's data that match one of the patterns and none of exclude."""
    files = {}
    with _tar(ar_members(path), 'data', path) as tar:
        for member in tar:
            name = member.name[2:] if member.name.startswith('./') else member.name
            if (member.isfile() and any(fnmatch.fnmatchcase(name, p) for p in patterns)
                    and not any(fnmatch.fnmatchcase(name, p) for p in exclude)):
                files[name] = tar.extractfile(member).read()
    return files


def find_deb(debs, package, version):
    """The .deb of package at version in the folder debs, or None."""
    for path in sorted(glob.glob(os.path.join(debs, glob.escape(package) + '_*.deb'))):
        control = deb_control(path)
        if control.get('Package') == package and control.get('Version') == version:
            return path
    return None


def _apt(command, cwd=None):
    """(its CompletedProcess, its first error line) of an apt command; (None, None) where apt is missing."""
    if shutil.which(command[0]) is None:
        return None, None
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    errors = [line for line in result.stderr.splitlines() if line.startswith('E:')] or result.stderr.splitlines()
    return result, (errors[0].strip() if errors else f'exit status {result.returncode}')


def candidate_version(package):
    """The version of package that apt-get would download now (for --latest)."""
    result, reason = _apt(['apt-cache', 'show', '--no-all-versions', package])
    if result is None:
        raise UserError("--latest asks apt-cache for Debian's current versions, and there is no apt-cache here: "
                        "collect without --latest, or on a Debian 12 machine")
    versions = re.findall(r'(?m)^Version: (.+)$', result.stdout)
    if result.returncode != 0 or not versions:
        raise UserError(f"apt-cache show {package} failed ({reason}): run `apt-get update` (as root)")
    return versions[0]


def fetch(package, version, debs):
    """Path of the .deb of package at version in the folder debs, downloaded with apt-get download
    where it is not there yet."""
    path = find_deb(debs, package, version)
    if path:
        return path
    request = f'{package}={version}'
    if shutil.which('apt-get') is None:
        raise UserError(f"no {package} {version} in {debs}, and no apt-get to download it: on a Debian 12 machine run "
                        f"`apt-get download {request}` and copy the .deb into {debs}, or pass "
                        f"--input=<english_mix.jsonl.zst archive> to the prepare.py scripts")
    os.makedirs(debs, exist_ok=True)
    result, reason = _apt(['apt-get', 'download', request], cwd=debs)
    if result.returncode != 0:
        raise UserError(f"apt-get download {request} failed ({reason}): run `apt-get update` (as root); if Debian "
                        f"no longer has {version}, run collect.py with --latest (the text then differs from "
                        f"README.md's hashes) or put that .deb in {debs}")
    path = find_deb(debs, package, version)
    if path is None:
        raise UserError(f"apt-get download {request} wrote no .deb of {package} {version} into {debs}")
    return path


# ----------------------------------------------------------------------------------------------
# The collection: documents, their split, the header

def document_hash(source, name):
    return hashlib.sha256(f'{source}\0{name}'.encode('utf-8')).digest()


def split_documents(source, documents, fraction=VAL_FRACTION):
    """The names of the validation documents of a source ({name: text}): in the order of a hash of
    (source, name), each document taken while the validation text stays within fraction of the
    source's UTF-8 bytes; at least one document, and never all of them. Independent of the order of
    the documents and of the tokenizer."""
    sizes = {name: len(text.encode('utf-8')) for name, text in documents.items()}
    if len(sizes) < 2:
        raise UserError(f"source {source} has {len(sizes)} document(s): a train and a validation split need two")
    budget = fraction * sum(sizes.values())
    order = sorted(sizes, key=lambda name: document_hash(source, name))
    val, total = [], 0
    for name in order[:-1]:
        if total + sizes[name] <= budget:
            val.append(name)
            total += sizes[name]
    return set(val or order[:1])


def update_hash(digest, name, text):
    """A source's SHA-256 covers its documents' names and texts, in archive order (by name)."""
    digest.update(name.encode('utf-8') + b'\0' + text.encode('utf-8') + b'\0')


def collect(debs=DEFAULT_DEBS, latest=False, packages=None, sources=None, fraction=VAL_FRACTION, log=print):
    """(header, records) of the collection: each record {'source', 'name', 'split', 'text'}, sources in
    order, documents by name; the header names the packages (and versions) read and, per source, its
    document names, the validation ones, their bytes and a SHA-256 of the text."""
    packages = PACKAGES if packages is None else packages
    sources = SOURCES if sources is None else sources
    start = time.time()
    paths, versions = {}, {}
    for package in sorted({p for source in sources for p in source.packages}):
        if package not in packages:
            raise UserError(f"source package {package} has no pinned version in PACKAGES")
        paths[package] = fetch(package, candidate_version(package) if latest else packages[package], debs)
        versions[package] = deb_control(paths[package])['Version']
        log(f"{package} {versions[package]}: {os.path.basename(paths[package])}, "
            f"{os.path.getsize(paths[package]):,} bytes")
    header = {'format': FORMAT, 'version': FORMAT_VERSION, 'packages': versions,
              'pinned': all(versions[p] == packages[p] for p in versions), 'val_fraction': fraction,
              'sources': {}}
    records = []
    for source in sources:
        files = {}
        for package in source.packages:
            files.update(deb_files(paths[package], source.members, source.exclude))
        documents = {}
        for name, text in source.read(files):
            if name in documents:
                raise UserError(f"source {source.name} has two documents named {name!r}")
            if text.strip():
                documents[name] = text
        val = split_documents(source.name, documents, fraction)
        digest = hashlib.sha256()
        for name in sorted(documents):
            update_hash(digest, name, documents[name])
            records.append({'source': source.name, 'name': name, 'split': 'val' if name in val else 'train',
                            'text': documents[name]})
        nbytes = sum(len(t.encode('utf-8')) for t in documents.values())
        header['sources'][source.name] = {
            'what': source.what, 'packages': list(source.packages), 'documents': len(documents), 'bytes': nbytes,
            'val_documents': len(val), 'val_bytes': sum(len(documents[n].encode('utf-8')) for n in val),
            'sha256': digest.hexdigest(), 'names': sorted(documents), 'val': sorted(val)}
        log(f"{source.name}: {len(documents):,} documents, {nbytes:,} bytes ({len(val):,} validation documents)")
    header['collect_seconds'] = round(time.time() - start, 1)
    return header, records


def _zstandard(path):
    try:
        import zstandard
    except ImportError as e:
        raise UserError(f"{path}: the english_mix archive is zstd-compressed: pip install zstandard ({e})") from None
    return zstandard


def write_archive(path, header, records):
    """The collection as zstd-compressed JSON lines (header, then the records), written as path.tmp and
    renamed once complete. The same collection gives the same bytes (no time stamp inside)."""
    zstandard = _zstandard(path)
    header = {k: v for k, v in header.items() if k != 'collect_seconds'}
    tmp = path + '.tmp'
    try:
        with open(tmp, 'wb') as raw, zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw) as f:
            f.write(json.dumps(header, ensure_ascii=False).encode('utf-8') + b'\n')
            for record in records:
                line = {'source': record['source'], 'name': record['name'], 'split': record['split'],
                        'text': record['text']}
                f.write(json.dumps(line, ensure_ascii=False).encode('utf-8') + b'\n')
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _open_archive(path):
    """The archive's decompressed lines, as a binary file (closed by the caller)."""
    zstandard = _zstandard(path)
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, 'rb'), closefd=True))


def read_archive(path):
    """(header, records) of an archive written by write_archive; records is a generator that checks
    each line, and each source's document count and SHA-256 against the header once it has read them all."""
    if not os.path.isfile(path):
        raise UserError(f"no english_mix archive at {path}: write one with `python data/english_mix/collect.py "
                        f"--out {path}`")
    zstandard = _zstandard(path)
    with _open_archive(path) as f:
        try:
            header = json.loads(f.readline())
        except (ValueError, zstandard.ZstdError):
            header = None
    if not isinstance(header, dict) or header.get('format') != FORMAT:
        raise UserError(f"{path} is not an english_mix archive (no english_mix header in zstd-compressed JSON "
                        f"lines); write one with `python data/english_mix/collect.py`")
    if header.get('version') != FORMAT_VERSION:
        raise UserError(f"{path} is english_mix archive version {header.get('version')}, this code reads "
                        f"{FORMAT_VERSION}: collect it again")

    def records():
        digests = {name: hashlib.sha256() for name in header['sources']}
        counts = collections.Counter()
        with _open_archive(path) as f:
            f.readline()  # the header
            try:
                for line_number, line in enumerate(f, 2):
                    try:
                        record = json.loads(line)
                        source, name, split, text = (record[k] for k in ('source', 'name', 'split', 'text'))
                    except (ValueError, KeyError, TypeError):
                        raise UserError(f"{path} line {line_number}: not an english_mix document record: the archive "
                                        f"is damaged; copy or collect it again") from None
                    if source not in digests or split not in dataprep.SPLITS:
                        raise UserError(f"{path} line {line_number}: source {source!r} or split {split!r} "
                                        f"is not in its header")
                    update_hash(digests[source], name, text)
                    counts[source] += 1
                    yield record
            except zstandard.ZstdError as e:
                raise UserError(f"{path} is damaged or cut short ({e}): copy or collect it again") from None
        for name, recorded in header['sources'].items():
            if counts[name] != recorded['documents'] or digests[name].hexdigest() != recorded['sha256']:
                raise UserError(f"{path}: source {name}'s {counts[name]:,} documents do not match the header's "
                                f"{recorded['documents']:,} and SHA-256: the archive is damaged; copy or collect it again")
    return header, records()


# ----------------------------------------------------------------------------------------------
# What data/english_mix_gpt2/prepare.py and data/english_mix_llama/prepare.py read

INPUT_HELP = ("an english_mix archive (.jsonl.zst) written by data/english_mix/collect.py, instead of "
              f"{os.path.relpath(DEFAULT_ARCHIVE, REPO)} (collected first if missing)")


def archive_source(path, max_docs=None):
    """The archive as prepare's Source: each document labelled by its source, in its recorded split;
    max_docs: at most that many documents of each source in each split. meta['collection'] is the
    archive's header."""
    header, records = read_archive(path)

    def documents():
        taken = collections.Counter()
        for record in records:
            key = (record['source'], record['split'])
            if max_docs is None or taken[key] < max_docs:
                taken[key] += 1
                yield record['split'], record['text'], record['source']

    sources = header['sources']
    per_split = [(s['documents'] - s['val_documents'], s['val_documents']) for s in sources.values()]
    total = sum(min(n, max_docs) if max_docs is not None else n for pair in per_split for n in pair)
    collection = dict(header, archive=os.path.abspath(path), max_docs=max_docs)
    return dataprep.Source(
        description=f"english_mix archive {os.path.abspath(path)}: {', '.join(sources)}",
        split_names={'train': 'the documents of each source not held out',
                     'val': f"about {header['val_fraction']:.0%} of each source's bytes, whole documents "
                            f"chosen by a hash of their names"},
        documents=documents(), total=total, default_label=None, extra_meta={'collection': collection})


def _check_options(args):
    """Options that do not apply, and a local tokenizer that is missing (the default's absolute path,
    or one given as ./ ~/ /), fail here, before a collection that takes a minute. A hub id passes."""
    for flag in ('val_input', 'val_fraction', 'source_field'):
        if getattr(args, flag) is not None:
            raise UserError(f"--{flag} does not apply: an english_mix archive carries its sources and split")
    if args.streaming:
        raise UserError("--streaming does not apply: it streams a Hugging Face dataset, and this one is an archive")
    local = os.path.isabs(args.tokenizer) or args.tokenizer.startswith(('.', '~'))
    if local and not os.path.exists(os.path.expanduser(args.tokenizer)):
        raise UserError(f"no tokenizer at {args.tokenizer}: build the real ones with `python data/tokenizers/build.py` "
                        f"first, or pass --tokenizer=<a local tokenizer of the same kind>")


def input_source(args):
    """--input: one archive, its own split."""
    if len(args.input) != 1:
        raise UserError(f"--input takes one english_mix archive, got {len(args.input)} paths")
    _check_options(args)
    return archive_source(args.input[0], args.max_docs)


def default_source(args):
    """The collection in data/english_mix/english_mix.jsonl.zst, collected first if it is missing."""
    _check_options(args)
    if not os.path.exists(DEFAULT_ARCHIVE):
        print(f"collecting the English mix (the pinned Debian packages) into {DEFAULT_ARCHIVE} first")
        header, records = collect()
        write_archive(DEFAULT_ARCHIVE, header, records)
    header, _ = read_archive(DEFAULT_ARCHIVE)
    if header['packages'] != PACKAGES:
        raise UserError(f"{DEFAULT_ARCHIVE} holds other package versions than collect.py pins: run "
                        f"`python data/english_mix/collect.py` again, or pass --input={DEFAULT_ARCHIVE} to use it as it is")
    return archive_source(DEFAULT_ARCHIVE, args.max_docs)


# ----------------------------------------------------------------------------------------------
# The table of bytes per token per source per tokenizer

DATASETS = [os.path.join(os.path.dirname(HERE), name) for name in ('english_mix_gpt2', 'english_mix_llama')]


def dataset_metas(folders=DATASETS):
    """[(dataset name, meta.pkl)] of prepared datasets."""
    metas = []
    for folder in folders:
        path = os.path.join(folder, 'meta.pkl')
        if not os.path.exists(path):
            raise UserError(f"no {path}: run python {os.path.relpath(os.path.join(folder, 'prepare.py'), REPO)} first")
        metas.append((os.path.basename(os.path.normpath(folder)), load_meta(folder)))  # plain values only
    return metas


def bytes_per_token_table(folders=DATASETS, metas=None):
    """A markdown table: for each source (and all), its documents and UTF-8 bytes (train + val), and
    for each prepared dataset (or each (name, meta) of metas) its text tokens (BOS and end-of-document
    ids left out) and bytes a token."""
    metas = metas or dataset_metas(folders)
    names = list(metas[0][1]['sources']) + ['all']
    lines = ['| source | documents | bytes | ' + ' | '.join(f'{n} tokens | {n} bytes/token' for n, _ in metas) + ' |',
             '| --- ' * (3 + 2 * len(metas)) + '|']
    for name in names:
        cells = []
        first = None
        for _, meta in metas:
            stats = [meta['stats'][split].get(name) for split in dataprep.SPLITS]
            documents = sum(s['documents'] for s in stats if s)
            nbytes = sum(s['bytes'] for s in stats if s)
            specials = 1 + (meta['bos_id'] is not None)
            tokens = sum(s['tokens'] for s in stats if s) - documents * specials
            if first is None:
                first = (documents, nbytes)
            elif first != (documents, nbytes):
                raise UserError(f"source {name} differs between the datasets ({first} and {(documents, nbytes)} "
                                f"documents and bytes): prepare both from the same archive")
            cells += [f'{tokens:,}', f'{nbytes / tokens:.3f}' if tokens else '-']
        lines.append(f'| {name} | {first[0]:,} | {first[1]:,} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


MANIFEST = os.path.join(HERE, 'manifest.json')


def make_manifest(archive=DEFAULT_ARCHIVE, folders=DATASETS):
    """What README.md's numbers are made from: the archive's size and SHA-256, its header's packages and
    per-source counts and hashes, and each prepared dataset's per-source statistics (meta.pkl)."""
    header, _ = read_archive(archive)
    digest = hashlib.sha256()
    with open(archive, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    keys = ('documents', 'bytes', 'val_documents', 'val_bytes', 'sha256')
    return {
        'archive': {'bytes': os.path.getsize(archive), 'sha256': digest.hexdigest()},
        'packages': header['packages'],
        'sources': {name: {k: source[k] for k in keys} for name, source in header['sources'].items()},
        'datasets': {name: {'bos_id': meta['bos_id'], 'sources': list(meta['sources']),
                            'stats': {split: {source: {k: v for k, v in numbers.items() if k in ('documents', 'bytes', 'tokens')}
                                              for source, numbers in sources.items()}
                                      for split, sources in meta['stats'].items()}}
                     for name, meta in dataset_metas(folders)},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description='collect the English mix (Debian manuals, the 1913 Webster, '
                                                 'Python code) into one archive for the english_mix prepare.py scripts')
    parser.add_argument('--out', default=DEFAULT_ARCHIVE, help='the archive to write (.jsonl.zst)')
    parser.add_argument('--debs', default=DEFAULT_DEBS,
                        help='folder of the .deb files: those there are used, the others downloaded into it')
    parser.add_argument('--latest', action='store_true',
                        help="Debian's current versions instead of the pinned ones (the text then differs from README.md's)")
    parser.add_argument('--table', nargs='*', metavar='DATASET',
                        help='print bytes per token per source of prepared datasets (default: english_mix_gpt2 and '
                             'english_mix_llama) instead of collecting')
    parser.add_argument('--manifest', action='store_true',
                        help=f"write {os.path.relpath(MANIFEST, REPO)} (README.md's numbers) from the archive and the "
                             f"two prepared datasets instead of collecting")
    args = parser.parse_args(argv)
    if args.manifest:
        with open(MANIFEST, 'w') as f:
            json.dump(make_manifest(), f, indent=1, sort_keys=False)
            f.write('\n')
        print(f"wrote {MANIFEST}")
        return
    if args.table is not None:
        print(bytes_per_token_table(args.table or DATASETS))
        return
    if not args.out.endswith('.jsonl.zst'):
        raise UserError(f"--out {args.out}: the archive is zstd-compressed JSON lines, name it <name>.jsonl.zst")
    start = time.time()
    header, records = collect(args.debs, args.latest)
    write_archive(args.out, header, records)
    total = sum(s['bytes'] for s in header['sources'].values())
    print(f"{len(records):,} documents, {total:,} bytes of text, in {header['collect_seconds']:.0f} s; archive "
          f"{os.path.getsize(args.out):,} bytes in {time.time() - start:.0f} s in all -> {os.path.abspath(args.out)}")


if __name__ == '__main__':
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
