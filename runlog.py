"""
The run log: train.py writes it (RunLog), plot_runs.py and the reference comparison's summarize.py
read it (read_run_log). Its keys are listed in TRAINING_GUIDE.md ("The run log").

    out_dir/run_YYYYMMDD_HHMMSS.json   one JSON object, valid after every write (written, then renamed):
        config, model_args, env         the run's effective configuration, model and environment
        iters, evals, events            one record per log line, evaluation, checkpoint or skipped step
        resumes                         the header of each resumed process, with its dropped records
    out_dir/run_YYYYMMDD_HHMMSS.jsonl  the same records, one a line ({'kind': 'iter' | 'eval' | 'event', ...}),
                                        appended as they come: for `tail -f`; it keeps every line ever written

A resumed run continues its checkpoint's log. A record's 'time' counts from its own process's start.
"""

import glob
import json
import os

from configurator import UserError

KINDS = ('iters', 'evals', 'events')


class RunLog:
    """The writer: rank 0 of train.py opens one per run (or continues the checkpoint's) and adds records."""

    def __init__(self, out_dir, name, header):
        self.path = os.path.join(out_dir, name)
        self.lines_path = self.path[:-len('.json')] + '.jsonl'
        if os.path.exists(self.path):  # a resumed run appends to its run's log
            with open(self.path) as f:
                self.data = json.load(f)
            # records past the checkpoint come from a run that stopped without saving them (SIGKILL):
            # the resumed run redoes those iterations, so they leave the log (the .jsonl keeps every line)
            start = header['env']['start_iter']
            dropped = sum(r['iter'] > start for kind in ('iters', 'evals') for r in self.data[kind])
            for kind in ('iters', 'evals'):
                self.data[kind] = [r for r in self.data[kind] if r['iter'] <= start]
            self.data.setdefault('resumes', []).append(dict(header, dropped_records=dropped))
        else:
            self.data = dict(header, **{kind: [] for kind in KINDS})
        self.write()

    def add(self, kind, record):
        """One record of kind 'iters' | 'evals' | 'events': kept in the log and appended to the .jsonl."""
        self.data[kind].append(record)
        with open(self.lines_path, 'a') as f:
            f.write(json.dumps({'kind': kind[:-1], **record}) + '\n')

    def write(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)


REPO_DIR = os.path.dirname(os.path.abspath(__file__))


def shown_path(path):
    """A path as result files and logs record it: relative to the repo when it lies inside it (the same
    on every machine), else as given."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return path
    relative = os.path.relpath(path, REPO_DIR)
    return path if relative == os.pardir or relative.startswith(os.pardir + os.sep) else relative


def find_run_log(path):
    """A run log's path from a run_*.json file, its .jsonl twin, or an out_dir (its newest run log)."""
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist: give a run log (out_dir/run_*.json) or an out_dir holding one")
    if os.path.isdir(path):
        logs = sorted(glob.glob(os.path.join(path, 'run_*.json')))  # run_YYYYMMDD_HHMMSS: newest last
        if not logs:
            raise UserError(f"{path} holds no run log (run_*.json): is it a train.py out_dir?")
        return logs[-1]
    if path.endswith('.jsonl'):  # the JSON-lines twin lacks the header (config, env): read the .json
        twin = path[:-len('.jsonl')] + '.json'
        if not os.path.isfile(twin):
            raise UserError(f"{path} is a run log's JSON-lines twin and its {os.path.basename(twin)} is missing: "
                            f"pass the .json run log")
        return twin
    return path


def read_run_log(path):
    """(the run log's path, its parsed contents) for a run log, its .jsonl twin or an out_dir, checked
    to be a train.py run log: a UserError otherwise."""
    log_path = find_run_log(path)
    try:
        with open(log_path) as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {log_path}: {e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{log_path} is not valid JSON ({e}): give a run log written by train.py") from None
    if not isinstance(data, dict):
        raise UserError(f"{log_path} is not a train.py run log (not a JSON object)")
    missing = [key for key in ('env', 'iters', 'evals') if key not in data]
    if missing or not isinstance(data['env'], dict) or not all(isinstance(data[k], list) for k in ('iters', 'evals')):
        raise UserError(f"{log_path} is not a train.py run log (it lacks {', '.join(missing) or 'a valid env, iters or evals'})")
    return log_path, data


def add_wall_time(log):
    """'wall' in each record of a run log's 'iters' and 'evals' (or of one list of records): seconds of
    training since the run first started, the processes of a resumed run laid end to end (the time
    between a stop and its resume left out). A record's 'time' counts from its own process's start, so
    wall = time + the length of the processes before its own, each as long as its last record's time
    (in either list): the same for its evaluations and its iterations, so both lie on one axis.

    Which process wrote a record: with 'unix_time' (every record since the run log has it), its
    process started at unix_time - time, and a new process starts after the record before it (in
    time, over both lists) was written. Without it (older logs), a drop in 'time' within a list
    starts the next process, the k-th of each list taken to be the same process; these come first."""
    lists = [log[kind] for kind in ('iters', 'evals')] if isinstance(log, dict) else [log]
    process = {}  # id(record) -> (0 for the older records without unix_time, 1 for those with it; number)
    for records in lists:  # older records: a drop in time within the list starts a process
        number, previous = 0, None
        for record in records:
            t = record.get('time')
            if t is None or record.get('unix_time') is not None:
                continue
            if previous is not None and t < previous:
                number += 1
            process[id(record)] = (0, number)
            previous = t
    clocked = sorted((r for records in lists for r in records
                      if r.get('time') is not None and r.get('unix_time') is not None), key=lambda r: r['unix_time'])
    number, previous = -1, None
    for record in clocked:  # a process starts after its predecessor's last record was written
        if previous is None or record['unix_time'] - record['time'] > previous:
            number += 1
        process[id(record)] = (1, number)
        previous = record['unix_time']
    length = {}  # process -> its last record's time
    for records in lists:
        for record in records:
            if id(record) in process:
                length[process[id(record)]] = max(length.get(process[id(record)], 0.0), record['time'])
    offset, total = {}, 0.0
    for key in sorted(length):
        offset[key], total = total, total + length[key]
    for records in lists:
        for record in records:
            if id(record) in process:
                record['wall'] = offset[process[id(record)]] + record['time']
