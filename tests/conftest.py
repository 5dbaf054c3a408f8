"""The CPU suite (`python -m pytest tests`) leaves tests/gpu out: that suite runs on a GPU machine,
named explicitly (`python -m pytest tests/gpu`; see README.md)."""
import os

GPU_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gpu')


def pytest_ignore_collect(collection_path, config):
    if str(collection_path) != GPU_DIR:
        return None
    asked = [os.path.abspath(str(arg).split('::')[0]) for arg in config.args]
    return not any(path == GPU_DIR or path.startswith(GPU_DIR + os.sep) for path in asked)


# the fast tier, `python -m pytest -q -m "not slow" tests`: unit tests in this process (model, data,
# cost tool, configurator, export); the files below start training processes (python train.py,
# torchrun) and make up most of the suite's time
SLOW_FILES = {'test_distributed.py', 'test_reliability.py', 'test_docs.py', 'test_checkpoint_state.py',
              'test_run_messages.py', 'test_train.py', 'test_bench.py', 'test_imports_script.py',
              'test_save_memory.py', 'test_eval_bpb.py',
              'test_eval_downstream.py', 'test_sample.py'}


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: starts training processes (left out by -m "not slow")')


def pytest_collection_modifyitems(config, items):
    import pytest
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
