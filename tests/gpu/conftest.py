"""
The GPU suite: skipped, with the reason, where no CUDA device exists. Each run on a GPU appends one
JSON line (date, GPU, torch and CUDA versions, the git commit, each check's outcome, time and
measurements, and the totals) to tests/gpu/results.local.jsonl, which git ignores, so a run leaves
the tree clean. tests/gpu/results.jsonl is the committed record: to add a run to it, name it in
GPU_SUITE_RESULTS (any path, relative to the working folder), or append its line from the local file:

    GPU_SUITE_RESULTS=tests/gpu/results.jsonl python -m pytest -q -n 7 --dist loadgroup tests/gpu
    tail -n 1 tests/gpu/results.local.jsonl >> tests/gpu/results.jsonl
"""
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(HERE, 'results.local.jsonl')  # GPU_SUITE_RESULTS, where set, names another file
_checks, _start = {}, time.time()


def pytest_configure(config):
    """The quick configs' dataset, prepared once as the README says (seconds), before any worker starts."""
    config.addinivalue_line('markers', 'xdist_group(name): runs of one group share a pytest-xdist worker')
    if not torch.cuda.is_available() or hasattr(config, 'workerinput'):
        return
    folder = os.path.join(REPO, 'data', 'python_stdlib')
    if not all(os.path.exists(os.path.join(folder, f)) for f in ('train.bin', 'val.bin', 'meta.pkl')):
        subprocess.run([sys.executable, os.path.join(folder, 'prepare.py')], cwd=REPO, check=True,
                       capture_output=True)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA device: the GPU suite runs on a machine with an NVIDIA GPU "
                                       "(python -m pytest tests/gpu)")
        for item in items:
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    check = _checks.setdefault(report.nodeid, {'name': report.nodeid.split('tests/gpu/')[-1], 'outcome': 'passed',
                                               'seconds': 0.0})
    check['seconds'] = round(check['seconds'] + report.duration, 1)
    if report.failed:
        check['outcome'] = 'failed'
        check['error'] = str(report.longrepr).strip().splitlines()[-1][:500] if report.longrepr else ''
    elif report.skipped and check['outcome'] != 'failed':
        check['outcome'] = 'skipped'
    progress = os.environ.get('GPU_SUITE_PROGRESS')  # a file that gets each report as it comes
    if progress and report.when == 'call' or report.failed:
        if progress:
            with open(progress, 'a') as f:
                f.write(f"{report.nodeid} {report.when} {report.outcome} {report.duration:.1f}s "
                        f"{dict(report.user_properties)}\n" + (f"{report.longrepr}\n" if report.failed else ''))
    measured = dict(report.user_properties)
    if measured:
        check.setdefault('measured', {}).update(measured)


def git_commit():
    """GPU_SUITE_COMMIT where set (a copy of the tree whose .git, if any, is not its own), else git's HEAD."""
    if os.environ.get('GPU_SUITE_COMMIT'):
        return os.environ['GPU_SUITE_COMMIT']
    try:
        return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def pytest_sessionfinish(session, exitstatus):
    if not torch.cuda.is_available() or not _checks or hasattr(session.config, 'workerinput'):
        return  # a CPU machine records nothing; with pytest-xdist the controller writes the line
    checks = list(_checks.values())
    totals = {k: sum(c['outcome'] == k for c in checks) for k in ('passed', 'failed', 'skipped')}
    line = dict(date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
                gpu=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda,
                commit=git_commit(), checks=checks, totals=dict(totals, seconds=round(time.time() - _start, 1)),
                command=' '.join(['python -m pytest', *session.config.invocation_params.args]))
    with open(os.environ.get('GPU_SUITE_RESULTS') or RESULTS, 'a') as f:
        f.write(json.dumps(line) + '\n')
