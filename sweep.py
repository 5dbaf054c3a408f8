"""
Run a grid of train.py runs (configs x learning rates x seeds x any key), resume what stopped, compare.

    python sweep.py config/sweeps/english_compare.py                     # every run not finished yet, one at a time
    python sweep.py config/sweeps/english_compare.py --parallel=4        # four runs at once, sharing the GPU
    python sweep.py config/sweeps/english_compare.py --gpus=0,1,2,3      # one run on each of four GPUs at a time
    python sweep.py config/sweeps/english_compare.py --dry_run=True      # each run's folder, state and command
    python sweep.py config/sweeps/english_compare.py --summarize=True    # out_dir/summary: results.json, results.md, figures

A sweep file is a config file of this script's keys (below, or --help), nanoGPT-style: `configs` names
train.py config files (one group each), `grid` the train.py keys to vary, `overrides` the keys set for
every run. Every combination of the grid runs with every config, seeds outermost (a sweep cut short has
every group at its first seeds), in its own folder out_dir/<group>-<key><value>... (named from its
settings: lr for learning_rate, s for seed): train.py's out_dir, with console.log (everything the run
printed) and sweep_run.json (its record: settings, exact arguments, status).

Invoked again, the sweep skips finished runs (compare.training_finished: the run log shows max_iters
reached, evaluated and saved; with eval_bpb=True also eval_bpb.py's result), resumes stopped ones
(--init_from=resume where the folder holds a checkpoint) and retries failed ones. A run whose
recorded arguments differ from the sweep's now is an error, before anything starts: a changed sweep
goes to a new out_dir, and no run is ever overwritten. A failed run (its exit status and the last
lines of its console.log are printed) does not stop the others; the exit status is 0 when every run
finished, 1 otherwise. Ctrl-C (or SIGTERM) is passed to every running train.py as SIGTERM: each saves
its checkpoint and exits, and the next invocation resumes them.

Each run is a process group of its own (outside the terminal's), so that one Ctrl-C reaches each run
once, through the sweep. Several runs sharing one GPU share its speed too (the summary says so: take
speed from runs that had their device alone), and train.py's memory check counts the whole GPU for
each of them: leave room. With gpus, the configs name device='cuda': each run sees its one GPU as
cuda:0. The summary (compare.py's docstring has the rule) picks each group's best learning rate, gives means
with 95% Student-t intervals over seeds and the differences between groups, paired where seeds share
the data order.
"""

import difflib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import compare
from runlog import shown_path
from configurator import Configurator, UserError, run_cli
from flops_parameter_counting.detailed_cost_analysis import train_defaults  # train.py's keys, read without torch

REPO_DIR = os.path.dirname(os.path.abspath(__file__))

DEFAULTS = dict(
    out_dir='',                # the sweep's folder: one folder per run (train.py's out_dir of each) and summary/
    configs={},                # {group name: train.py config file, or (file, {train.py key: value})}: each runs every grid point
    grid={},                   # {train.py key: [values]}: every combination runs, with every config
    overrides={},              # {train.py key: value} for every run (max_iters, device, ...)
    min_lr_ratio=0.0,          # > 0: each run's min_lr = this x its learning_rate (the cosine ends at that fraction)
    tuned='learning_rate',     # grid keys whose best value the summary picks per group, comma-separated ('' = none)
    parallel=1,                # runs at once on each device: several share one GPU (and its speed)
    gpus='',                   # '' = each run on its config's device; '0,1,2,3' = each on one of these (CUDA_VISIBLE_DEVICES)
    eval_bpb=False,            # after training, eval_bpb.py on each run's final checkpoint (every validation document)
    eval_args={},              # {eval_bpb.py key: value} for that step, e.g. {'max_docs': 2000}
    metric='',                 # the summary's: '' = 'eval_bpb' with eval_bpb=True, else 'val_bpb'; or 'val_loss'
    comparisons='first',       # the summary's differences: 'first' | 'previous' | 'all' | 'A:B,C:D' (B against A)
    summarize=False,           # summarize the runs into out_dir/summary_dir (results.json, results.md, figures); train nothing
    summary_dir='summary',     # the summary's folder inside out_dir (two sweeps that share runs in one out_dir: one each)
    dry_run=False,             # print each run's folder, state and command; start nothing
    progress_interval=60.0,    # seconds between progress lines while runs go on
    tail_lines=15,             # lines of a failed run's console.log printed with its exit status
)
CHOICES = dict(metric=('',) + compare.METRICS)

SHORT_NAMES = {'learning_rate': 'lr', 'seed': 's'}  # in run folder names
RESERVED = ('out_dir', 'init_from', 'overwrite')    # keys the sweep sets itself
NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]*')


@dataclass
class Run:
    name: str
    group: str
    config: str
    settings: dict           # the grid's values for this run
    folder: str
    train_args: list         # train.py's arguments, without --init_from (added on resume)
    eval_args: Optional[list]  # eval_bpb.py's, or None without eval_bpb

    def record(self):
        return dict(name=self.name, group=self.group, config=self.config, settings=self.settings,
                    train_args=self.train_args, eval_args=self.eval_args)


def argument(key, value):
    return f"--{key}={value}" if isinstance(value, str) else f"--{key}={value!r}"


def value_text(value):
    text = repr(value) if isinstance(value, float) else str(value)
    return re.sub(r'[^A-Za-z0-9.+-]', '_', text)


# -----------------------------------------------------------------------------
# the plan: every run of the sweep, checked before anything starts

def parse(argv):
    c = Configurator(DEFAULTS, choices=CHOICES).parse(argv)
    if not c['out_dir']:
        raise UserError("out_dir is not set: name the sweep's folder in the sweep file or with --out_dir=...")
    for key in ('configs', 'grid', 'overrides', 'eval_args'):
        if any(not isinstance(k, str) for k in c[key]):
            raise UserError(f"{key}: the keys must be strings, got {list(c[key])}")
    if not c['configs']:
        raise UserError("configs is empty: give the train.py config files, e.g. configs={'gpt2': 'config/compare_gpt2.py'}")
    if c['parallel'] < 1:
        raise UserError(f"parallel must be 1 or more, got {c['parallel']}")
    if c['gpus'] and not re.fullmatch(r'\d+(,\d+)*', c['gpus']):
        raise UserError(f"gpus must be GPU indices separated by commas (e.g. '0,1,2,3'), got {c['gpus']!r}")
    if not NAME.fullmatch(c['summary_dir']):
        raise UserError(f"summary_dir must be a folder name (letters, digits and ._+-), got {c['summary_dir']!r}")
    if c['min_lr_ratio'] < 0:
        raise UserError(f"min_lr_ratio must be 0 (the configs' min_lr) or positive, got {c['min_lr_ratio']}")
    if not c['metric']:
        c['metric'] = 'eval_bpb' if c['eval_bpb'] else 'val_bpb'
    if c['metric'] == 'eval_bpb' and not c['eval_bpb']:
        raise UserError("metric='eval_bpb' needs eval_bpb=True (eval_bpb.py after each run)")
    return c


def check_train_keys(keys, where):
    known = set(train_defaults())
    for key in keys:
        if not isinstance(key, str):
            raise UserError(f"{where}: the keys must be strings, got {key!r}")
        if key in RESERVED:
            raise UserError(f"{where}: {key} is the sweep's to set (each run's folder is out_dir/<run name>)")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise UserError(f"{where}: {key!r} is not a train.py key" + (f" (did you mean {close[0]!r}?)" if close else ""))


def check_keys(c):
    for where in ('grid', 'overrides'):
        check_train_keys(c[where], where)
    both = sorted(set(c['grid']) & set(c['overrides']))
    if both:
        raise UserError(f"{', '.join(both)} is both in grid and in overrides: keep it in one")
    for key, values in c['grid'].items():
        if not isinstance(values, (list, tuple)) or not values:
            raise UserError(f"grid: {key} must be a non-empty list of values, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise UserError(f"grid: {key} lists a value twice: {list(values)}")
    if 'out_dir' in c['eval_args']:
        raise UserError("eval_args: out_dir is the sweep's to set (each run's folder)")
    tuned = [k for k in c['tuned'].split(',') if k]
    missing = [k for k in tuned if k not in c['grid']]
    if missing:
        raise UserError(f"tuned names {', '.join(missing)}, which the grid does not vary: add it to grid, "
                        f"or set --tuned= (the keys whose best value each group takes)")
    if c['min_lr_ratio'] > 0:
        if 'learning_rate' not in c['grid'] and 'learning_rate' not in c['overrides']:
            raise UserError("min_lr_ratio needs learning_rate in grid or overrides")
        if 'min_lr' in c['grid'] or 'min_lr' in c['overrides']:
            raise UserError("min_lr_ratio sets min_lr: remove min_lr from grid and overrides, or set min_lr_ratio=0")
    return tuned


def group_config(name, entry, c):
    """(config file, the group's own overrides) of one entry of configs: a path, or (path, {key: value})."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(f"configs: group name {name!r} must be letters, digits and ._+- (it names folders)")
    path, own = None, None
    if isinstance(entry, str):
        path, own = entry, {}
    elif isinstance(entry, (tuple, list)) and len(entry) == 2:
        path, own = entry
    if not isinstance(path, str) or not isinstance(own, dict):
        raise UserError(f"configs: {name}: give a config file's path, or (path, {{train.py key: value}}), got {entry!r}")
    if not os.path.isfile(path):
        raise UserError(f"configs: {name}: config file {path!r} not found")
    check_train_keys(own, f"configs: {name}")
    both = sorted(set(own) & set(c['grid']))
    if both:
        raise UserError(f"configs: {name} sets {', '.join(both)}, which the grid varies: keep it in one")
    return path, own


def plan(c):
    """Every run of the sweep, in launch order: seeds outermost, then the configs, then the grid's other keys."""
    keys = list(c['grid'])
    outer = ['seed'] if 'seed' in keys else []
    inner = [k for k in keys if k != 'seed']
    groups = {name: group_config(name, entry, c) for name, entry in c['configs'].items()}
    runs = []
    for outer_values in itertools.product(*(c['grid'][k] for k in outer)):
        for group, (config, group_overrides) in groups.items():
            for inner_values in itertools.product(*(c['grid'][k] for k in inner)):
                chosen = dict(zip(outer + inner, outer_values + inner_values))
                settings = {k: chosen[k] for k in keys}  # the grid's order
                name = '-'.join([group] + [f"{SHORT_NAMES.get(k, k)}{value_text(v)}" for k, v in settings.items()])
                folder = os.path.join(c['out_dir'], name)
                values = {**c['overrides'], **group_overrides, **settings}
                if c['min_lr_ratio'] > 0:
                    values['min_lr'] = float(f"{c['min_lr_ratio'] * values['learning_rate']:.12g}")
                train_args = [config] + [argument(k, v) for k, v in values.items()] + [argument('out_dir', folder)]
                eval_args = ([argument('out_dir', folder)] + [argument(k, v) for k, v in c['eval_args'].items()]
                             if c['eval_bpb'] else None)
                runs.append(Run(name, group, config, settings, folder, train_args, eval_args))
    names = [r.name for r in runs]
    if c['summary_dir'] in names:
        raise UserError(f"a run would be named {c['summary_dir']!r}, the summary's folder: rename that group")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two runs would share the folder {twice[0]}: make the grid's values differ in their names")
    return runs


def has_checkpoint(folder):
    from checkpoint import checkpoint_paths  # torch: only once a run starts
    return any(os.path.exists(p) for p in checkpoint_paths(folder))


def state(run):
    """What a run needs now: 'finished', 'evaluate' (trained, eval_bpb.py owed), 'resume' or 'new'.
    A folder of another sweep, or one this sweep ran with other arguments, is a UserError."""
    record = compare.read_record(run.folder)
    if record is None:
        if os.path.isdir(run.folder) and os.listdir(run.folder):
            raise UserError(f"{run.folder} exists and has no {compare.RECORD}: it is not a run of this sweep; "
                            f"move it away or choose another out_dir")
        return 'new'
    if record.get('train_args') != run.train_args:
        old, new = record.get('train_args') or [], run.train_args
        changed = [a for a in new if a not in old] + [f"(was {a})" for a in old if a not in new]
        raise UserError(f"{run.folder} was run with other arguments ({' '.join(changed)}): the runs of a changed "
                        f"sweep go to a new out_dir; or move that folder away")
    if record.get('evaluated_with') is not None and run.eval_args is not None and record['evaluated_with'] != run.eval_args:
        raise UserError(f"{run.folder} was evaluated with other eval_bpb.py arguments "
                        f"({' '.join(record['evaluated_with'])}): the runs of a changed sweep go to a new out_dir")
    _, log = compare.newest_run_log(run.folder)
    if log is not None and compare.training_finished(log)[0]:
        if run.eval_args is None or record.get('evaluated_with') == run.eval_args:
            return 'finished'
        result = compare.bpb_result_path(run.folder, compare.training_finished(log)[2])
        if os.path.exists(result) and record.get('phase') != 'eval':  # not from an evaluation of the sweep's
            raise UserError(f"{result} was not written by this sweep: move it away, so that eval_bpb.py can write its own")
        return 'evaluate'
    return 'resume' if has_checkpoint(run.folder) else 'new'


# -----------------------------------------------------------------------------
# running: slots on devices, child processes, progress

@dataclass
class Job:
    run: Run
    phase: str               # 'train' | 'eval'
    proc: subprocess.Popen
    slot: int
    started: float
    start_fraction: float    # of max_iters, when it started (a resumed run starts part way)


def format_duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def tail(path, lines):
    try:
        with open(path, errors='replace') as f:
            return [line for line in f.read().splitlines() if line.strip()][-lines:]
    except OSError:
        return []


class Sweep:
    """The scheduler: fills free slots from the runs left, watches the children, reports."""

    def __init__(self, c, runs, states, log=print):
        self.c, self.log = c, log
        self.slots = ([g for g in c['gpus'].split(',') for _ in range(c['parallel'])] if c['gpus']
                      else [None] * c['parallel'])
        self.left = [r for r in runs if states[r.name] != 'finished']
        self.states = states
        self.total = len(runs)
        self.finished = [r.name for r in runs if states[r.name] == 'finished']
        self.failed, self.stopped, self.active = {}, [], {}
        self.stop_signal, self.t0, self.durations = None, time.time(), []
        self.fractions = {r.name: (compare.progress_fraction(r.folder) or 0.0) for r in self.left}

    # -- signals
    def handle(self, signum, frame):
        self.stop_signal = signal.Signals(signum).name
        for job in list(self.active.values()):
            if job.proc.poll() is None:
                job.proc.send_signal(signal.SIGTERM)

    # -- starting
    def start(self, run, phase, slot):
        if phase == 'train':
            args = run.train_args + (['--init_from=resume'] if has_checkpoint(run.folder) else [])
            command = [sys.executable, os.path.join(REPO_DIR, 'train.py')] + args
        else:
            command = [sys.executable, os.path.join(REPO_DIR, 'eval_bpb.py')] + run.eval_args
        os.makedirs(run.folder, exist_ok=True)
        record = {k: v for k, v in (compare.read_record(run.folder) or {}).items() if k != 'exit_code'}
        compare.write_record(run.folder, {**record, **run.record(), 'status': 'running', 'phase': phase,
                                          'runs_per_device': self.c['parallel'], 'gpu': self.slots[slot],
                                          'updated': datetime.now().isoformat(timespec='seconds')})
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        if self.slots[slot] is not None:
            env['CUDA_VISIBLE_DEVICES'] = self.slots[slot]
        with open(os.path.join(run.folder, compare.CONSOLE), 'a') as console:
            console.write(f"\n==> {datetime.now().isoformat(timespec='seconds')} sweep: "
                          + (f"CUDA_VISIBLE_DEVICES={self.slots[slot]} " if self.slots[slot] is not None else '')
                          + shlex.join(['python'] + [shown_path(a) for a in command[1:]]) + "\n")
            console.flush()
            proc = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        self.active[slot] = Job(run, phase, proc, slot, time.time(), self.fractions.get(run.name, 0.0))
        if self.stop_signal is not None:  # the signal came while it started: it stops too
            proc.send_signal(signal.SIGTERM)
        what = 'eval_bpb.py' if phase == 'eval' else 'resumed' if '--init_from=resume' in command else 'train.py'
        where = f" on GPU {self.slots[slot]}" if self.slots[slot] is not None else ''
        self.log(f"sweep: started {run.name} ({what}{where})", flush=True)

    def fill(self):
        for slot in range(len(self.slots)):
            if slot not in self.active and self.left and self.stop_signal is None:
                run = self.left.pop(0)
                self.start(run, 'eval' if self.states[run.name] == 'evaluate' else 'train', slot)

    # -- ending
    def set_status(self, run, **fields):
        record = {**(compare.read_record(run.folder) or run.record()), **fields,
                  'updated': datetime.now().isoformat(timespec='seconds')}
        compare.write_record(run.folder, record)

    def fail(self, job, code, why):
        run = job.run
        self.failed[run.name] = code
        self.set_status(run, status='failed', phase=job.phase, exit_code=code)
        console = os.path.join(run.folder, compare.CONSOLE)
        lines = '\n'.join('    ' + line for line in tail(console, self.c['tail_lines']))
        self.log(f"sweep: FAILED {run.name}: {why}; the last lines of {console}:\n{lines}", flush=True)

    def ended(self, job):
        run, code = job.run, job.proc.returncode
        del self.active[job.slot]
        if job.phase == 'train':
            try:
                _, log = compare.newest_run_log(run.folder)
            except UserError:
                log = None
            finished, last, max_iters = compare.training_finished(log) if log else (False, None, None)
            if finished:
                self.durations.append((time.time() - job.started) / max(1e-9, 1.0 - job.start_fraction))
                if run.eval_args is None:
                    return self.done(run)
                self.set_status(run, status='trained')
                if self.stop_signal is None:
                    return self.start(run, 'eval', job.slot)
            if self.stop_signal is not None:
                self.stopped.append(run.name)
                self.set_status(run, status='stopped', phase=job.phase)
                return
            stops = [e for e in log.get('events') or [] if e.get('event') == 'checkpoint'] if log else []
            if code == 0 and stops and stops[-1].get('reason', '').startswith('stopped by'):
                self.stopped.append(run.name)  # a signal from elsewhere (a scheduler's SIGTERM): saved, to resume
                self.set_status(run, status='stopped', phase=job.phase)
                self.log(f"sweep: {run.name} was {stops[-1]['reason']} at iteration {stops[-1].get('iter')}", flush=True)
                return
            if code == 0:
                return self.fail(job, 0, f"train.py exited 0 but its run log shows no saved end of training at max_iters "
                                         f"(last iteration {last}, max_iters {max_iters})")
            return self.fail(job, code, f"train.py exited with status {code}")
        if self.stop_signal is not None and code != 0:
            self.stopped.append(run.name)
            self.set_status(run, status='stopped', phase=job.phase)
            return
        _, log = compare.newest_run_log(run.folder)
        result = compare.bpb_result_path(run.folder, compare.training_finished(log)[2])
        if code == 0 and os.path.exists(result):
            self.set_status(run, evaluated_with=run.eval_args)
            return self.done(run)
        return self.fail(job, code, f"eval_bpb.py exited with status {code}"
                         + ("" if code else f" without writing {result}"))

    def done(self, run):
        self.finished.append(run.name)
        self.set_status(run, status='finished')
        self.log(f"sweep: finished {run.name}", flush=True)

    # -- progress
    def eta(self):
        """Seconds until every run is trained: each run's duration, estimated from the runs finished here
        and from the progress of those running, the remaining work spread over the slots. None before
        there is anything to go on."""
        totals, remaining = list(self.durations), []
        for job in self.active.values():
            if job.phase != 'train':
                continue
            fraction = compare.progress_fraction(job.run.folder)
            if fraction is not None and fraction > job.start_fraction:
                total = (time.time() - job.started) / (fraction - job.start_fraction)
                totals.append(total)
                remaining.append((1.0 - fraction) * total)
        if not totals:
            return None
        mean = sum(totals) / len(totals)
        remaining += [(1.0 - self.fractions.get(r.name, 0.0)) * mean for r in self.left
                      if self.states[r.name] != 'evaluate']
        return sum(remaining) / len(self.slots)

    def progress(self):
        eta = self.eta()
        self.log(f"sweep: {len(self.finished)} finished, {len(self.active)} running, {len(self.failed)} failed, "
                 f"{len(self.left)} left of {self.total}; {format_duration(time.time() - self.t0)} elapsed"
                 + (f", ETA {format_duration(eta)}" if eta is not None and (self.active or self.left) else ""),
                 flush=True)

    def go(self):
        handlers = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}
        last_report = time.time()
        try:
            self.fill()
            announced = False
            while self.active:
                time.sleep(0.2)
                if self.stop_signal is not None and not announced:
                    announced = True
                    self.log(f"sweep: {self.stop_signal}: asked the {len(self.active)} running run(s) to save and stop; "
                             f"no new runs start", flush=True)
                for job in list(self.active.values()):
                    if job.proc.poll() is not None:
                        self.ended(job)
                        self.fill()
                        self.progress()
                        last_report = time.time()
                if time.time() - last_report >= self.c['progress_interval'] and self.active:
                    self.progress()
                    last_report = time.time()
        finally:
            for job in self.active.values():  # an error of the sweep's own: the runs save and stop too
                if job.proc.poll() is None:
                    job.proc.send_signal(signal.SIGTERM)
            for job in self.active.values():
                job.proc.wait()
            for s, h in handlers.items():
                signal.signal(s, h)
        return self.report()

    def report(self):
        not_started = [r.name for r in self.left]
        self.log(f"sweep: {len(self.finished)} of {self.total} runs finished"
                 + (f"; failed: {', '.join(f'{n} (exit {code})' for n, code in self.failed.items())}" if self.failed else "")
                 + (f"; stopped: {', '.join(self.stopped)}" if self.stopped else "")
                 + (f"; not started: {len(not_started)}" if not_started else ""), flush=True)
        if self.stopped or not_started:
            self.log("sweep: run the same command again to resume the stopped runs and start the rest", flush=True)
        return 0 if len(self.finished) == self.total else 1


# -----------------------------------------------------------------------------

def summarize(c, runs, tuned):
    results = compare.summarize([compare.run_result(r.folder, c['metric'], r.record()) for r in runs], tuned,
                                c['grid'], c['metric'], c['comparisons'])
    folder = os.path.join(c['out_dir'], c['summary_dir'])
    os.makedirs(folder, exist_ok=True)
    text = compare.markdown(results)
    for name, content in (('results.json', json.dumps(results, indent=1)), ('results.md', text)):
        with open(os.path.join(folder, name + '.tmp'), 'w') as f:
            f.write(content)
        os.replace(os.path.join(folder, name + '.tmp'), os.path.join(folder, name))
    print(text)
    figures = compare.draw_figures(results, folder)
    print(f"wrote {os.path.join(folder, 'results.json')}, results.md"
          + (f" and {', '.join(os.path.basename(p) for p in figures)}" if figures else
             " (no figures: nothing finished yet)" if figures is not None else
             " (no figures: pip install matplotlib, or \".[plot]\")"))
    return 0


def main(argv):
    c = parse(argv)
    tuned = check_keys(c)
    runs = plan(c)
    compare.comparison_pairs(c['comparisons'], list(dict.fromkeys(  # the summary's groups: checked now, not at the end
        compare.group_label(dict(group=r.group, settings=r.settings), tuned) for r in runs)))
    if c['summarize']:
        return summarize(c, runs, tuned)
    states = {r.name: state(r) for r in runs}
    if c['dry_run']:
        for r in runs:
            command = ((['train.py'] + r.train_args + (['--init_from=resume'] if states[r.name] == 'resume' else []))
                       if states[r.name] in ('new', 'resume') else ['eval_bpb.py'] + r.eval_args
                       if states[r.name] == 'evaluate' else [])
            print(f"{r.name}: {states[r.name]}" + (f"\n    python {shlex.join(command)}" if command else ""))
            if states[r.name] in ('new', 'resume') and r.eval_args is not None:
                print(f"    then python {shlex.join(['eval_bpb.py'] + r.eval_args)}")
        counts = {s: list(states.values()).count(s) for s in ('finished', 'evaluate', 'resume', 'new')}
        print(f"{len(runs)} runs: " + ', '.join(f"{n} {s}" for s, n in counts.items() if n))
        return 0
    sweep = Sweep(c, runs, states)
    print(f"sweep: {len(runs)} runs in {c['out_dir']}, {len(sweep.finished)} finished already, {len(sweep.left)} to run, "
          f"{len(sweep.slots)} at a time", flush=True)
    return sweep.go()


if __name__ == '__main__':
    run_cli(main)
