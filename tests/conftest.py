"""The CPU suite (`python -m pytest tests`) leaves tests/gpu out: that suite runs on a GPU machine,
named explicitly (`python -m pytest tests/gpu`; see README.md)."""
import os

GPU_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gpu')


def pytest_ignore_collect(collection_path, config):
    if str(collection_path) != GPU_DIR:
        return None
    asked = [os.path.abspath(str(arg).split('::')[0]) for arg in config.args]
    return not any(path == GPU_DIR or path.startswith(GPU_DIR + os.sep) for path in asked)
