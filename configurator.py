"""
nanoGPT's configuration contract, checked.

    python train.py config/full_llama_1.36b.py --batch_size=4 --compile=False

train.py's globals are the defaults. A bare argument is a config file, exec'd over them; --key=value
overrides one key, the value parsed as a Python literal (or kept as a string when it is not one).
Arguments apply in order. Unlike nanoGPT, nothing a user sets is silently ignored or silently
mistyped: an unknown key (on the command line, or assigned by a config file) is an error naming the
closest known key, and a value of the wrong type is an error. Both are UserError, which the scripts
print as one line before exiting with status 2.
"""

import ast
import difflib
import os
import sys
import types
import typing


class UserError(Exception):
    """A mistake the user can fix. Scripts print its message on one line and exit non-zero."""


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
    return f"; did you mean '{match[0]}'?" if match else "; see the defaults at the top of train.py for the known keys"


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

    def __init__(self, defaults, key_types=None):
        """defaults: {key: default value}. key_types: {key: type} for keys whose default is None
        (and to override the type taken from a default)."""
        self.defaults = dict(defaults)
        self.types = {k: type(v) for k, v in defaults.items() if v is not None}
        self.types.update(key_types or {})
        missing = [k for k in defaults if k not in self.types]
        assert not missing, f"no type for config keys {missing}"

    def _set(self, config, key, value, where):
        if key not in self.defaults:
            raise UserError(f"{where}: unknown config key '{key}'{_closest(key, self.defaults)}")
        if value is None and self.defaults[key] is not None:
            raise UserError(f"{where}: {key} cannot be None")
        config[key] = _coerce(key, value, self.types[key], where)

    def apply_file(self, config, path):
        if not os.path.isfile(path):
            raise UserError(f"config file '{path}' not found (a bare argument names a config file; "
                            f"overrides are written --key=value)")
        with open(path) as f:
            source = f.read()
        namespace = dict(config)
        try:
            exec(compile(source, path, 'exec'), namespace)
        except Exception as e:  # the user's file: report where, in one line
            line = getattr(e, 'lineno', None)
            raise UserError(f"config file '{path}'{f' line {line}' if line else ''}: "
                            f"{type(e).__name__}: {e}") from None
        for key, value in namespace.items():
            if key.startswith('_') or not _is_config_value(value):
                continue
            if key not in config or value is not config[key]:
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

    def parse(self, argv):
        """The effective configuration after applying argv in order."""
        config = dict(self.defaults)
        for arg in argv:
            if arg.startswith('--'):
                self.apply_override(config, arg)
            elif arg.startswith('-'):
                raise UserError(f"'{arg}': overrides are written --key=value")
            else:
                self.apply_file(config, arg)
        return config


def format_config(config, defaults=None):
    """The effective configuration, one key a line; keys that differ from the defaults marked '*'."""
    width = max(len(k) for k in config)
    lines = []
    for key, value in config.items():
        mark = '*' if defaults is not None and defaults.get(key) != value else ' '
        lines.append(f"{mark} {key:<{width}} = {value!r}")
    return '\n'.join(lines)


def run_cli(entry):
    """Run a script's main(argv): a UserError is one line on stderr and exit status 2."""
    try:
        code = entry(sys.argv[1:])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    finally:
        torch = sys.modules.get('torch')
        if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    sys.exit(code)
