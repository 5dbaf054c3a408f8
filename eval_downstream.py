"""
Downstream benchmarks of a checkpoint with lm-evaluation-harness, and its bits per byte, in one JSON.

The benchmarks run on the checkpoint's Hugging Face export; bits per byte are of the validation
documents, each scored whole (bpb.py, as eval_bpb.py scores them). The JSON is written beside the run log.

    pip install "lm_eval[hf]"
    python eval_downstream.py --out_dir=out-llama-1.36b
    python eval_downstream.py --out_dir=out-gpt2-1.36b --tasks=hellaswag,piqa --limit=500
    python eval_downstream.py --out_dir=out-llama-1.36b --tasks=my_task --include_path=my_tasks/ --hf_dir=hf-llama

What it does, in order: exports out_dir's checkpoint as export_hf.py does (hf_format.py: the same
weights, logits checked against ours, and the dataset's tokenizer) into a temporary folder (or hf_dir),
scores the validation documents as eval_bpb.py does (bpb.bits_per_byte; bpb.py defines the number), then
runs lm_eval.simple_evaluate with model 'hf' on that folder. The default tasks suit ~1B models trained
on a few billion tokens (TRAINING_GUIDE.md, section 11): all zero-shot, scored by log-likelihood, no
generation. lm_eval fetches their data from the Hugging Face hub; a task defined by a YAML file over
local data files (include_path) needs no network.

The result, out_dir/downstream_iter{N}.json: per task the metrics as lm_eval reports them (acc,
acc_norm, perplexity, ... each with its _stderr; a filter other than 'none' stays in the name, as
'acc,flexible'), the task versions and sample counts, bits_per_byte (and eval_bpb.py's whole result
under 'bpb'), the checkpoint's iteration and these settings.
"""

import importlib.util
import os
import shutil
import tempfile
import time

import torch

from configurator import DEVICE_OR_AUTO, DTYPES, Configurator, UserError, check_device, run_cli

DEFAULTS = dict(
    out_dir='out',                 # the run whose checkpoint to evaluate; the JSON is written here
    ckpt='ckpt.pt',                # the checkpoint file in out_dir
    tasks='hellaswag,lambada_openai,piqa,arc_easy,winogrande',  # lm_eval task names, comma-separated
    num_fewshot=0,                 # examples in each prompt (0 = zero-shot, as the default tasks are reported)
    limit=0,                       # 0 = every document of each task; else the first this many
    batch_size=16,                 # lm_eval's batch size (requests a forward pass)
    include_path='',               # a folder (or YAML file) of task definitions, e.g. over local data files
    hf_dir='',                     # '' = export into a temporary folder, removed at the end; else this new folder, kept
    max_docs=0,                    # validation documents for bits_per_byte: 0 = all, else a seeded sample
    seed=1337,                     # which documents that sample takes (eval_bpb.py's seed)
    dataset='',                    # the dataset folder or name for bits_per_byte, if not the checkpoint's
    device='auto',                 # 'auto' = cuda if available, else cpu
    dtype='bfloat16',              # on GPU: the exported weights' dtype and bits_per_byte's autocast; CPU is float32
)
CHOICES = dict(device=DEVICE_OR_AUTO, dtype=DTYPES)  # the string keys' allowed values

MISSING = 'eval_downstream.py needs lm-evaluation-harness with its Hugging Face backend: pip install "lm_eval[hf]"'


def task_manager_for(tasks, include_path):
    """lm_eval's TaskManager that knows every name in tasks, or UserError naming the unknown ones.
    Names all found under include_path are looked up there alone: indexing lm_eval's own ~15,000
    tasks takes tens of seconds."""
    from lm_eval.tasks import TaskManager
    if include_path:
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(name in local.all_tasks for name in tasks):
            return local
    manager = TaskManager(include_path=include_path or None)
    unknown = [name for name in tasks if name not in manager.all_tasks]
    if unknown:
        where = f" or under {include_path}" if include_path else " (--include_path adds a folder of task YAML files)"
        raise UserError(f"unknown lm_eval task{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: not among "
                        f"lm_eval's tasks{where}")
    return manager


def task_scores(results):
    """{task: {metric: value, metric_stderr: value}} from simple_evaluate's results; lm_eval's 'N/A'
    stderr (a single document) becomes None."""
    scores = {}
    for task, metrics in results['results'].items():
        entry = {}
        for key, value in metrics.items():
            if ',' not in key:
                continue  # 'alias', 'name', ...: not a metric
            metric, filter_name = key.split(',', 1)
            name = metric if filter_name == 'none' else f'{metric},{filter_name}'
            entry[name] = value if isinstance(value, (int, float)) else None
        scores[task] = entry
    return scores


def main(argv):
    c = Configurator(DEFAULTS, choices=CHOICES).parse(argv)
    check_device(c['device'])
    if importlib.util.find_spec('lm_eval') is None or importlib.util.find_spec('accelerate') is None:
        raise UserError(MISSING)
    from bpb import bits_per_byte, check_options, dataset_files, write_json
    from checkpoint import inference_device, load_checkpoint, model_from_checkpoint
    from hf_format import check_out_dir, hf_arch, save_hf
    from loader import check_vocabulary, resolve_dataset
    from tokenizer import tokenizer_of

    tasks = [name.strip() for name in c['tasks'].split(',') if name.strip()]
    if not tasks:
        raise UserError("tasks is empty: name lm_eval tasks, comma-separated (e.g. --tasks=hellaswag,piqa)")
    if c['include_path'] and not os.path.exists(c['include_path']):
        raise UserError(f"include_path {c['include_path']} does not exist: name a folder of lm_eval task YAML files")
    check_options('val', c['max_docs'])
    for key, least in (('num_fewshot', 0), ('limit', 0), ('batch_size', 1)):
        if c[key] < least:
            raise UserError(f"{key} must be >= {least}, got {c[key]}")
    if c['hf_dir']:
        check_out_dir(c['hf_dir'], key='--hf_dir')
    device, autocast = inference_device(c['device'], c['dtype'])
    weights_dtype = c['dtype'] if device.startswith('cuda') else 'float32'
    ckpt_path = os.path.join(c['out_dir'], c['ckpt'])
    ckpt = load_checkpoint(ckpt_path)
    data_dir = resolve_dataset(c['dataset'] or ckpt['config']['dataset'])
    meta = dataset_files(data_dir, 'val')[0]  # a dataset without the byte files fails before any work
    check_vocabulary(data_dir, meta['vocab_size'], ckpt['model_args']['vocab_size'], ckpt['config']['dataset'])
    task_manager = task_manager_for(tasks, c['include_path'])
    model = model_from_checkpoint(ckpt)
    try:
        hf_arch(model.config)
    except ValueError as e:
        raise UserError(f"{ckpt_path}: {e}") from None
    spec, tokenizer = tokenizer_of(ckpt, c['dataset'])
    if spec['kind'] == 'bytes':
        raise UserError("lm_eval needs the checkpoint's tokenizer as Hugging Face files, and raw UTF-8 bytes have "
                        "none: evaluate a model trained on a tokenized dataset")
    iter_num = ckpt['iter_num']
    del ckpt

    from parallelize import quiet_torchao_import
    quiet_torchao_import()  # transformers' model classes import torchao, whose CPU-only load lines are noise here

    t0 = time.time()
    hf_dir = c['hf_dir'] or tempfile.mkdtemp(prefix='eval_downstream-')
    try:
        save_hf(model, (spec, tokenizer, None), hf_dir, weights_dtype, ckpt_path)
        model.to(device).eval()
        bpb = dict(iter_num=iter_num, **bits_per_byte(model, data_dir, 'val', c['max_docs'], c['seed'], device,
                                                        autocast))
        print(f"val: {bpb['overall']['bpb']:.4f} bits per byte over {bpb['overall']['documents']:,} documents")
        del model
        if device.startswith('cuda'):
            torch.cuda.empty_cache()  # lm_eval loads its own copy

        import lm_eval
        results = lm_eval.simple_evaluate(
            model='hf', model_args=dict(pretrained=hf_dir, dtype=weights_dtype), tasks=tasks,
            num_fewshot=c['num_fewshot'], limit=c['limit'] or None, batch_size=c['batch_size'], device=device,
            task_manager=task_manager, log_samples=False)
    finally:
        if not c['hf_dir']:
            shutil.rmtree(hf_dir, ignore_errors=True)

    scores = task_scores(results)
    result = dict(iter_num=iter_num, checkpoint=ckpt_path, tasks=scores,
                  versions={t: results['versions'].get(t) for t in scores},
                  n_samples={t: results['n-samples'].get(t) for t in scores},
                  n_shot={t: results['n-shot'].get(t) for t in scores},
                  bits_per_byte=bpb['overall']['bpb'], bpb=bpb, lm_eval_version=lm_eval.__version__,
                  seconds=round(time.time() - t0, 1), settings=dict(c))
    for task, metrics in scores.items():
        shown = ', '.join(f'{k} {v:.4f}' for k, v in metrics.items() if not k.endswith('_stderr') and v is not None)
        print(f"{task}: {shown}")
    path = os.path.join(c['out_dir'], f'downstream_iter{iter_num}.json')
    write_json(path, result)
    print(f"wrote {path}")
    return 0


if __name__ == '__main__':
    run_cli(main)
