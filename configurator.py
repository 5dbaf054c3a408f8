"""
nanoGPT's configuration contract, checked.

    python train.py config/full_llama_1.36b.py --batch_size=4 --compile=False

train.py's globals are the defaults. A bare argument is a config file, exec'd over them; --key=value
overrides one key, the value parsed as a Python literal (or kept as a string when it is not one).
Arguments apply in order. Unlike nanoGPT, nothing a user sets is silently ignored or silently
mistyped: an unknown key (on the command line, or assigned by a config file) is an error naming the
closest known key, a value of the wrong type is an error, and so is a string outside the key's
allowed values (its choices: a table next to the defaults, e.g. device='gpu' or dtype='bf16'),
when the configuration is read, before any work. All are UserError, which the scripts print as one
line before exiting with status 2.

--help (or -h) lists the keys with their defaults and meanings and exits 0, doing nothing else. The
meanings are the trailing comments of the defaults in the script's own source (train.py's globals,
sample.py's DEFAULTS dict), read with tokenize and ast: the defaults block is the one place a key is
described.
"""

import ast
import difflib
import gc
import io
import os
import re
import sys
import textwrap
import tokenize
import types
import typing


class UserError(Exception):
    """A mistake the user can fix. Scripts print its message on one line and exit non-zero."""


class HelpRequested(Exception):
    """--help or -h was given: args[0] is the text; run_cli prints it on stdout and exits 0."""


HELP_FLAGS = ('--help', '-h')

# -----------------------------------------------------------------------------
# allowed values: a script declares {key: choices} next to its defaults (train.py's CHOICES,
# sample.py's ...); a key's choices are a tuple of the allowed values, a dict of them to their
# meanings (for the message), or a Pattern

DTYPES = ('float32', 'bfloat16', 'float16')  # the precisions the scripts train and run in
# torch.compile's modes, as its documentation lists them
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


class Pattern:
    """Allowed values that a tuple cannot list: those that match regex (whole), described in words
    for the error message; suggest(value) -> the value meant, or None."""

    def __init__(self, regex, description, suggest=None):
        self.regex, self.description, self.suggest = re.compile(regex), description, suggest

    def allows(self, value):
        return self.regex.fullmatch(value) is not None


def _device_meant(value, auto):
    """'gpu' -> 'cuda', 'GPU:1' -> 'cuda:1', 'cuda0' -> 'cuda:0', 'CPU' -> 'cpu'; None when no guess."""
    guess = value.strip().lower().replace('gpu', 'cuda').replace('nvidia', 'cuda')
    guess = re.sub(r'^cuda\s*[:_ -]?\s*(\d+)$', r'cuda:\1', guess)
    allowed = DEVICE_OR_AUTO if auto else DEVICE
    return guess if guess != value and allowed.allows(guess) else None


# the devices the scripts run on; whether this machine has it is check_device's question
DEVICE = Pattern(r'cpu|cuda(:\d+)?|mps', "'cpu', 'cuda', 'cuda:N' (GPU N) or 'mps'",
                 suggest=lambda value: _device_meant(value, auto=False))
DEVICE_OR_AUTO = Pattern(r'auto|cpu|cuda(:\d+)?|mps', "'auto' (cuda if available, else cpu), 'cpu', 'cuda', "
                         "'cuda:N' (GPU N) or 'mps'", suggest=lambda value: _device_meant(value, auto=True))


def choice_error(key, value, allowed):
    """None if value is one of allowed (a tuple, a dict of values to meanings, or a Pattern), else
    the complaint, 'KEY must be ..., got VALUE', with the allowed value meant where one is close."""
    if isinstance(allowed, Pattern):
        if allowed.allows(value):
            return None
        meant = allowed.suggest(value) if allowed.suggest else None
        what = allowed.description
    else:
        if value in allowed:
            return None
        names = [v for v in allowed if isinstance(v, str) and v]
        meant = None
        if isinstance(value, str):  # 'HF' -> 'hf', then the closest by spelling
            meant = next((v for v in names if v.lower() == value.lower()), None)
            meant = meant or next(iter(difflib.get_close_matches(value, names, n=1, cutoff=0.6)), None)
        if isinstance(allowed, dict):  # {value: its meaning}
            listed = [f"{v!r} ({meaning})" for v, meaning in allowed.items()]
            what = ', '.join(listed[:-1]) + f" or {listed[-1]}" if len(listed) > 1 else listed[0]
        else:
            what = "one of " + ', '.join(map(repr, allowed))
    return f"{key} must be {what}, got {value!r}" + (f"; did you mean {meant!r}?" if meant is not None else '')


def check_choices(config, choices, assigned):
    """The check of choices on a configuration parsed without them (bench.py's own keys, which
    train.parse_config reads): UserError naming where a value outside its key's choices came from
    (assigned: key -> where, Configurator.assigned)."""
    for key, allowed in choices.items():
        complaint = config[key] is not None and choice_error(key, config[key], allowed)
        if complaint:
            raise UserError(f"{assigned.get(key, 'the default')}: {complaint}")


def check_device(device):
    """UserError, one line, where this machine lacks the device a script is to run on: 'cuda' without
    a CUDA GPU, 'cuda:N' past the GPUs there are, 'mps' without Apple's GPU. 'auto' and 'cpu' are
    always there. (Which names are devices at all is DEVICE's: checked when the configuration is read.)"""
    import torch
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise UserError(f"device={device!r} but no CUDA GPU is visible: pass --device=cpu (small models) or "
                            f"check nvidia-smi")
        index, count = int(device.partition(':')[2] or 0), torch.cuda.device_count()
        if index >= count:
            names = 'cuda:0' if count == 1 else f'cuda:0 to cuda:{count - 1}'
            raise UserError(f"device={device!r} but this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                            f"({names}): pass --device=cuda:0, or check CUDA_VISIBLE_DEVICES")
    if device == 'mps' and not torch.backends.mps.is_available():
        raise UserError("device='mps' but Apple's GPU (MPS) is not available on this machine: pass --device=cpu")


def annotation_types(dataclass_type):
    """{field: allowed type} from a dataclass's annotations (Optional[int] -> int)."""
    hints = typing.get_type_hints(dataclass_type)
    out = {}
    for name, hint in hints.items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = args[0] if args else hint
    return out


def _closest(key, known):
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else "; --help lists the known keys"


def _coerce(key, value, expected, where):
    """Return value as the key's type, or raise UserError."""
    if value is None:
        return value  # None is allowed where the default is None; checked by the caller
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: {key} must be True or False, got {value!r}")
    if expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # --max_iters=1e4
            return int(value)
        raise UserError(f"{where}: {key} must be an integer, got {value!r}")
    if expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{where}: {key} must be a number, got {value!r}")
    if expected is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where}: {key} must be a string, got {value!r}")
    if not isinstance(value, expected):
        raise UserError(f"{where}: {key} must be of type {expected.__name__}, got {value!r}")
    return value


def _is_config_value(value):
    return not isinstance(value, (types.ModuleType, types.FunctionType, type, types.BuiltinFunctionType))


class Configurator:

    def __init__(self, defaults, key_types=None, choices=None, positional=None, argparse_spellings=False):
        """defaults: {key: default value}. key_types: {key: type} for keys whose default is None
        (and to override the type taken from a default). choices: {key: its allowed values (a
        tuple, a dict of them to their meanings, or a Pattern)}, checked as each value is set (None,
        where a key's default is None, is always allowed). positional: the string key that bare
        arguments give, several joined with commas, for a script that takes no config file
        (plot_runs.py's runs). argparse_spellings: also accept `--key value`, and `--key` alone for
        a True/False key (the spellings of a script that once used argparse)."""
        self.defaults = dict(defaults)
        self.types = {k: type(v) for k, v in defaults.items() if v is not None}
        self.types.update(key_types or {})
        missing = [k for k in defaults if k not in self.types]
        assert not missing, f"no type for config keys {missing}"
        self.choices = dict(choices or {})
        assert set(self.choices) <= set(defaults), f"choices for unknown keys {set(self.choices) - set(defaults)}"
        wrong = [k for k, allowed in self.choices.items()
                 if defaults[k] is not None and choice_error(k, defaults[k], allowed)]
        assert not wrong, f"defaults outside their choices: {wrong}"
        assert positional is None or self.types.get(positional) is str, "the positional key holds a string"
        self.positional, self.argparse_spellings = positional, argparse_spellings
        self.assigned = {}  # key -> where the last parse set it ('--key' or "config file 'path'"), whatever the value

    def _set(self, config, key, value, where):
        if key not in self.defaults:
            raise UserError(f"{where}: unknown config key '{key}'{_closest(key, self.defaults)}")
        if value is None and self.defaults[key] is not None:
            raise UserError(f"{where}: {key} cannot be None")
        value = _coerce(key, value, self.types[key], where)
        if value is not None and key in self.choices:
            complaint = choice_error(key, value, self.choices[key])
            if complaint:
                raise UserError(f"{where}: {complaint}")
        config[key] = value
        self.assigned[key] = where

    def apply_file(self, config, path):
        if not os.path.isfile(path):
            raise UserError(f"config file '{path}' not found (a bare argument names a config file; "
                            f"overrides are written --key=value)")
        with open(path) as f:
            source = f.read()
        namespace = dict(config)
        try:
            code = compile(source, path, 'exec')
            stored = {node.id for node in ast.walk(ast.parse(source, path))
                      if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
            exec(code, namespace)
        except Exception as e:  # the user's file: report where, in one line
            line = getattr(e, 'lineno', None)
            raise UserError(f"config file '{path}'{f' line {line}' if line else ''}: "
                            f"{type(e).__name__}: {e}") from None
        for key, value in namespace.items():
            if key.startswith('_') or not _is_config_value(value):
                continue
            if key not in config or value is not config[key] or key in stored:
                if key not in config:
                    raise UserError(f"config file '{path}': unknown config key '{key}'{_closest(key, config)} "
                                    f"(a helper variable in a config file must start with '_')")
                self._set(config, key, value, f"config file '{path}'")

    def apply_override(self, config, arg):
        if '=' not in arg:
            raise UserError(f"'{arg}': overrides are written --key=value")
        key, raw = arg[2:].split('=', 1)
        try:
            value = ast.literal_eval(raw)
        except (SyntaxError, ValueError):
            value = raw  # not a Python literal: a string, as in nanoGPT
        if self.types.get(key) is str and not isinstance(value, str) and value is not None:
            value = raw  # --wandb_run_name=2024 is the string '2024'
        self._set(config, key, value, f"--{key}")

    def _joined(self, argv):
        """argv with argparse's spellings written --key=value: `--key value` and, for a True/False
        key, `--key` alone (True)."""
        out, args = [], iter(argv)
        for arg in args:
            key = arg[2:]
            if not arg.startswith('--') or '=' in arg or key not in self.defaults:
                out.append(arg)
            elif self.types[key] is bool:
                out.append(f'--{key}=True')
            else:
                value = next(args, None)
                out.append(arg if value is None or value.startswith('--') else f'--{key}={value}')
                if value is not None and value.startswith('--'):
                    out.append(value)
        return out

    def parse(self, argv):
        """The effective configuration after applying argv in order. With --help or -h anywhere in
        argv, nothing is applied: HelpRequested carries the list of keys (help_text)."""
        if any(arg in HELP_FLAGS for arg in argv):
            raise HelpRequested(self.help_text(_caller_files()))
        if self.argparse_spellings:
            argv = self._joined(argv)
        config = dict(self.defaults)
        self.assigned = {}
        for arg in argv:
            if arg.startswith('--'):
                self.apply_override(config, arg)
            elif arg.startswith('-'):
                raise UserError(f"'{arg}': overrides are written --key=value")
            elif self.positional is not None:
                key = self.positional
                joined = ','.join(v for v in (config[key] if key in self.assigned else '', arg) if v)
                self._set(config, key, joined, f"the argument {arg!r}")
            else:
                self.apply_file(config, arg)
        return config

    def help_text(self, sources):
        """Usage, then every key with its default and meaning, grouped by the section comments of its
        defaults block. sources: the Python files that define the defaults, searched in order (the
        first one to assign a key describes it); their trailing comments are the meanings."""
        sources, docs, origin = list(sources), {}, {}
        for path in sources:
            if len(docs) == len(self.defaults):
                break
            try:
                found = defaults_docs(path)
            except (OSError, SyntaxError, ValueError, UnicodeDecodeError, tokenize.TokenError):
                continue
            for key, doc in found.items():
                if key in self.defaults and key not in docs:
                    docs[key], origin[key] = doc, path
        script = next((p for p in reversed(sources) if p in origin.values()), None)
        lines = [f"usage: python {os.path.basename(script) if script else sys.argv[0]} "
                 f"[{self.positional.upper() if self.positional else 'CONFIG_FILE'} ...] [--key=value ...]", ""]
        summary = _summary(script) if script else None
        if summary:
            lines += [summary, ""]
        bare = (f"a bare argument adds to {self.positional} (several are joined with commas)" if self.positional
                else "a bare argument is a config file (Python, run over the defaults)")
        spellings = "; --key value, and --key alone for a True/False key, work too" if self.argparse_spellings else ""
        lines += textwrap.wrap(f"Arguments apply in order: {bare}, --key=value sets one key (a Python literal, else a "
                               f"string){spellings}. The keys, their defaults and meanings:", 96,
                               break_on_hyphens=False, break_long_words=False)
        several = len(set(origin.values())) > 1
        values = {k: repr(v) for k, v in self.defaults.items()}
        key_width = max(len(k) for k in self.defaults)
        value_width = min(16, max([len(values[k]) for k in docs if docs[k][1]] or [0]))
        heading = None
        for i, key in enumerate(self.defaults):
            section, comment = docs.get(key, (None, None))
            if section is None and several and key in origin:
                section = os.path.basename(origin[key])
            if i == 0 or section != heading:
                lines.append("")
                if section is not None:
                    lines.append(f"# {section}")
                heading = section
            line = f"{key:<{key_width}} = {values[key]}"
            if comment:
                line = f"{key:<{key_width}} = {values[key]:<{value_width}}  # {comment}"
            lines.append(line)
        return '\n'.join(lines)


def _caller_files():
    """The Python files of the calling frames, innermost first, this file left out: the script whose
    main() parses its arguments, and any script whose defaults it builds on (bench.py on train.py)."""
    here = os.path.abspath(__file__)
    files, frame = [], sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename
        if os.path.isfile(path) and os.path.abspath(path) != here and path not in files:
            files.append(path)
        frame = frame.f_back
    return files


def _summary(path):
    """The first line of a script's docstring."""
    try:
        with tokenize.open(path) as f:
            doc = ast.get_docstring(ast.parse(f.read()))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def defaults_docs(path):
    """{key: (section, meaning)} for the defaults a Python file assigns at module level, in source order:
    globals (`key = value  # meaning`, train.py's) and the entries of a dict of defaults
    (`NAME = dict(key=value,  # meaning` or `NAME = {'key': value,  # meaning`, sample.py's).
    meaning: the trailing comment on the key's lines, joined with the comment lines below it that are
    indented further than the key (its continuation), or None. section: the last full-line comment
    above the key within its block, at the key's indentation (`# I/O`; separators such as `# ----`
    left out), or None."""
    with tokenize.open(path) as f:
        source = f.read()
    tree = ast.parse(source, path)
    trailing, full_line = {}, {}  # row -> text; row -> (column, text)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        text = tok.string.lstrip('#').strip()
        if tok.line[:tok.start[1]].strip():
            trailing[tok.start[0]] = text
        elif text.strip('-=*~ '):
            full_line[tok.start[0]] = (tok.start[1], text)

    def section_above(after, before, column, section):
        rows = [row for row, (col, _) in full_line.items() if after < row < before and col <= column]
        return full_line[max(rows)][1] if rows else section

    docs = {}

    def add(key, first, last, column, section):
        row = next((row for row in range(first, last + 1) if row in trailing), None)
        if row is None:
            docs.setdefault(key, (section, None))
            return
        words = [trailing[row]]
        while row + 1 in full_line and full_line[row + 1][0] > column:  # the comment goes on below
            row += 1
            words.append(full_line[row][1])
        docs.setdefault(key, (section, ' '.join(words)))

    section, previous_end = None, 0
    for stmt in tree.body:
        section = section_above(previous_end, stmt.lineno, stmt.col_offset, section)
        previous_end = stmt.end_lineno
        target = (stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else
                  stmt.target if isinstance(stmt, ast.AnnAssign) and stmt.value is not None else None)
        if not isinstance(target, ast.Name):
            section = None  # other code ends a block of globals
            continue
        value = stmt.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == 'dict':
            entries = [(kw.arg, kw.lineno, kw.end_lineno, kw.col_offset) for kw in value.keywords
                       if kw.arg is not None]
        elif isinstance(value, ast.Dict):
            entries = [(k.value, k.lineno, v.end_lineno, k.col_offset) for k, v in zip(value.keys, value.values)
                       if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        else:
            add(target.id, stmt.lineno, stmt.end_lineno, stmt.col_offset, section)
            continue
        inner, inner_end = None, value.lineno  # a dict of defaults is a block of its own
        for key, first, last, column in entries:
            inner = section_above(inner_end, first, column, inner)
            add(key, first, last, column, inner)
            inner_end = last
        section = None
    return docs


def format_config(config, defaults=None):
    """The effective configuration, one key a line; with defaults, a first line that says so and keys
    that differ from the defaults marked '*'."""
    width = max(len(k) for k in config)
    lines = ["effective configuration (* = not the default):"] if defaults is not None else []
    for key, value in config.items():
        mark = '*' if defaults is not None and defaults.get(key) != value else ' '
        lines.append(f"{mark} {key:<{width}} = {value!r}")
    return '\n'.join(lines)


def run_cli(entry):
    """Run a script's main(argv): a UserError is one line on stderr and exit status 2; --help prints
    the keys (HelpRequested) on stdout and exits 0."""
    try:
        code = entry(sys.argv[1:])
    except HelpRequested as e:
        print(e.args[0])
        code = 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    finally:
        torch = sys.modules.get('torch')
        if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            # the run's model, wrapped by DDP or FSDP2, is now garbage in reference cycles that hold the
            # process group (FSDP2's device mesh): collect it first, so that destroying the group joins
            # its backend's threads here, while the interpreter is whole, and not in the C++ destructors
            # at exit ("terminate called without an active exception")
            gc.collect()
            torch.distributed.destroy_process_group()
    sys.exit(code)
