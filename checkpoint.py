"""
The resume contract: what a checkpoint holds, how a training run's state leaves each layout (one
process, DDP, ZeRO-1, FSDP2) and how it re-enters any other, written atomically, read with clear
errors. train.py saves and resumes through this file; sample.py, export_hf.py, eval_bpb.py and
eval_downstream.py read checkpoints through it; nothing else knows the format. This docstring is its
one description.

The files in out_dir:
    ckpt.pt        with always_save_checkpoint=True (the default): the run's latest state, written at
                   every evaluation, at the end and on SIGTERM/SIGINT. With always_save_checkpoint=False:
                   the best state, written only at an evaluation that lowers the validation loss (and
                   at the end when its evaluation does), so its weights are the ones best_val_loss was
                   measured on. sample.py, export_hf.py and eval_bpb.py read this file.
    ckpt_last.pt   only with always_save_checkpoint=False: the latest state when it is not the best
                   (written at the end and on SIGTERM/SIGINT), so that the run can go on without the
                   best being replaced. Removed when ckpt.pt is written with the latest state again.
    init_from='resume' takes the latest of the two: ckpt_last.pt when it exists and is at a later
    iteration than ckpt.pt (or at the same one and newer), otherwise ckpt.pt (latest_checkpoint()).

Contents (CHECKPOINT_VERSION 1; a dict that load_checkpoint() reads on CPU, or torch.load with
weights_only=True inside torch.serialization.safe_globals(safe_globals())):
    version        CHECKPOINT_VERSION
    model          plain state dict of the Transformer (no compile or DDP/FSDP prefixes), fp32, on CPU;
                   a tied matrix is stored once, under both of its names
    model_args     ModelConfig fields, resolved (ModelConfig(**model_args) rebuilds the model)
    optimizer      AdamW state dict, full (ZeRO-1 consolidated, FSDP2 gathered), keyed like a
                   single-process torch.optim.AdamW over model.param_groups(), on CPU; on resume the
                   run's configured settings (weight_decay, betas, eps, fused) apply, not these
    scaler         GradScaler state (float16 training; {} otherwise)
    iter_num       the number of optimizer steps taken (skipped steps included)
    tokens         the tokens of the optimizer steps taken (right across a resume that changes the batch)
    windows        the training windows (batch rows) read so far, skipped steps included: where the
                   data order goes on after a resume, also one that changes the batch
    best_val_loss  the best validation loss seen so far (in ckpt_last.pt too: it is ckpt.pt's)
    last_eval_iter the iteration of the last evaluation (a run stopped on an evaluation iteration before
                   evaluating has it below iter_num: the resumed run evaluates first)
    config         the effective training configuration (a resume refuses a model key, seed, data_order
                   or dataset set to another value than this)
    rng            rank 0's RNG states (torch CPU, its CUDA device, numpy, python)
    rng_ranks      every rank's RNG states, in rank order (a resume on as many ranks takes its own back)
    run_log        the run log's file name inside out_dir, so a resumed run appends to it
    tokenizer      the dataset's tokenizer spec from meta.pkl ({'kind', 'name'}), for sample.py and export_hf.py

Older checkpoints lack some of these fields; what they stand for is worked out here alone
(windows_read, tokens_trained, best_val_loss, last_eval_iter, tokenizer_spec), never by the callers.

The data loader needs no state of its own: which tokens a batch holds is a pure function of the
seed, the data order, the micro-step and the position (loader.py: with data_order='epoch' the windows
read before the iteration, with 'random' the iteration), so windows and iter_num are where it goes on.

Gathering never changes the training state: every tensor of the checkpoint is a fresh CPU copy,
and nothing is written into what model.state_dict() or optimizer.state_dict() hand back (those
hold the live tensors).
"""

import copy
import os
import pickle
import random
import re

import numpy as np
import torch

from configurator import UserError

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ('version', 'model', 'model_args', 'iter_num', 'config')
BEST_NAME, LAST_NAME = 'ckpt.pt', 'ckpt_last.pt'  # in out_dir (the docstring says which holds what)


def safe_globals():
    """What a checkpoint holds beyond tensors and plain Python values (dict, list, tuple, str, int,
    float, bool, None), for torch.load(weights_only=True): numpy's RNG state, a tuple with a uint32
    ndarray (ndarray, its reconstruction function, its dtype). Nothing else is loaded: a file that
    would build any other object (and could run code doing so) is refused before it does."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    allowed = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), _reconstruct]
    if tuple(int(x) for x in torch.__version__.split('.')[:2]) >= (2, 6):  # names given explicitly
        # the function under both of its module paths: a file written under numpy 1 names numpy.core
        allowed += [(_reconstruct, 'numpy.core.multiarray._reconstruct'),
                    (_reconstruct, 'numpy._core.multiarray._reconstruct')]
    return allowed


# -----------------------------------------------------------------------------
# state out of the live run (collectives under torchrun: every rank calls them)

def cpu_copy(value, keep=True):
    """A plain CPU tensor holding value's full contents, never sharing storage with it. A DTensor is
    gathered first (a collective: every rank calls this); keep=False only takes part in the
    gathering and returns None (the ranks that write nothing). A wrapper subclass around one plain
    tensor (torchao's FP8 weight under FSDP2's FP8 all-gather) is saved as that tensor."""
    tensor = value.detach()
    if hasattr(tensor, 'full_tensor'):
        tensor = tensor.full_tensor()
    if type(tensor) is not torch.Tensor and hasattr(tensor, '__tensor_flatten__'):
        inner, _ = tensor.__tensor_flatten__()
        if len(inner) == 1:
            tensor = getattr(tensor, inner[0])
    return tensor.to('cpu', copy=True) if keep else None


def full_model_state(raw_model, master=True):
    """A plain fp32 state dict on CPU, copied (FSDP2's DTensors gathered). A tied matrix is copied
    once and stored under both of its names. None on ranks other than master."""
    state, copies = {}, {}
    for name, value in raw_model.state_dict(keep_vars=True).items():
        if id(value) not in copies:
            copies[id(value)] = cpu_copy(value, keep=master)
        state[name] = copies[id(value)]
    return state if master else None


def full_optimizer_state(optimizer, master=True):
    """The optimizer state as one single-process AdamW's over model.param_groups(), copied to CPU:
    ZeRO-1's shards gathered on rank 0, FSDP2's sharded state gathered. None on ranks other than master."""
    if hasattr(optimizer, '_param_to_rank'):  # ZeRO-1
        return zero1_optimizer_state(optimizer, master)
    live = optimizer.state_dict()
    state = {index: {key: cpu_copy(value, keep=master) if torch.is_tensor(value) else copy.deepcopy(value)
                     for key, value in param_state.items()}
             for index, param_state in live['state'].items()}
    return {'state': state, 'param_groups': copy.deepcopy(live['param_groups'])} if master else None


def zero1_optimizer_state(optimizer, master):
    """ZeRO-1's full state on rank 0, one tensor at a time: each rank sends the state of the
    parameters it owns straight from where it lives, and rank 0 copies each to CPU as it arrives.
    (ZeroRedundancyOptimizer.consolidate_state_dict serializes a rank's whole shard into bytes first:
    several times the shard in host memory on every rank, and each peer's shard on rank 0's GPU.)"""
    import torch.distributed as dist
    rank = dist.get_rank()
    params = [p for group in optimizer.param_groups for p in group['params']]
    owner = optimizer._param_to_rank
    local = optimizer.optim.state
    # what each rank holds: {index: {key: ('tensor', shape, dtype) or ('value', value)}}, small
    mine = {i: {k: ('tensor', tuple(v.shape), v.dtype) if torch.is_tensor(v) else ('value', v)
                for k, v in local[p].items()}
            for i, p in enumerate(params) if owner[p] == rank and p in local}
    layouts = [None] * dist.get_world_size()
    dist.all_gather_object(layouts, mine)
    wire = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'  # where the point-to-point copies travel
    state = {}
    for i, p in enumerate(params):
        src = owner[p]
        if i not in layouts[src]:
            continue
        entry = {}
        for key, spec in sorted(layouts[src][i].items()):
            if spec[0] == 'value':
                entry[key] = copy.deepcopy(spec[1])
            elif src == 0:
                entry[key] = local[p][key].detach().to('cpu', copy=True) if rank == 0 else None
            elif rank == src:
                dist.send(local[p][key].detach().to(wire).contiguous(), dst=0)
            elif rank == 0:
                buffer = torch.empty(spec[1], dtype=spec[2], device=wire)
                dist.recv(buffer, src=src)
                entry[key] = buffer.to('cpu', copy=True) if wire != 'cpu' else buffer
        state[i] = entry
    if not master:
        return None
    groups, start = [], 0
    for group, local_group in zip(optimizer.param_groups, optimizer.optim.param_groups):
        # every AdamW setting (the local AdamW's), with the wrapper's values where it has them
        settings = {k: copy.deepcopy(v) for k, v in {**local_group, **group}.items() if k != 'params'}
        groups.append(dict(settings, params=list(range(start, start + len(group['params'])))))
        start += len(group['params'])
    return {'state': state, 'param_groups': groups}


def rng_state():
    """This process's RNG states: torch CPU, this process's CUDA device, numpy, python."""
    state = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state()  # the current device's: each rank has its own GPU
    return state


def all_rng_states():
    """Every rank's rng_state(), in rank order (a collective under torchrun)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return [rng_state()]
    states = [None] * dist.get_world_size()
    dist.all_gather_object(states, rng_state())
    return states


def training_state(raw_model, optimizer, scaler, master, **fields):
    """Everything a checkpoint holds, gathered from the live run: the model, the optimizer, the
    GradScaler and every rank's RNG, plus fields (model_args, iter_num, tokens, best_val_loss,
    last_eval_iter, config, run_log, tokenizer). A collective; the dict on master, None elsewhere."""
    model = full_model_state(raw_model, master)
    optimizer_state = full_optimizer_state(optimizer, master)
    rng = all_rng_states()
    if not master:
        return None
    return dict(version=CHECKPOINT_VERSION, model=model, optimizer=optimizer_state,
                scaler=scaler.state_dict() if scaler.is_enabled() else {}, rng=rng[0], rng_ranks=rng, **fields)


# -----------------------------------------------------------------------------
# state back into a run of any layout

def load_model_state(raw_model, state, path):
    """Load a full state dict into the unwrapped model (before it is sharded or wrapped)."""
    try:
        raw_model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path} does not fit its own model_args: {str(e).splitlines()[0]}") from None


def load_optimizer_state(optimizer, state):
    """Load a full single-process optimizer state into any layout: FSDP2 shards each state tensor
    like its parameter; ZeRO-1 keeps its own shard. The checkpoint's dict is not changed, and no
    tensor of it stays in use (it may be memory-mapped from a file a later save replaces). The
    optimizer's own settings, as this run's configuration built it (betas, weight_decay, eps, fused),
    win over the checkpoint's; the learning rate is set by the schedule at every step."""
    configured = [{k: v for k, v in group.items() if k != 'params'} for group in optimizer.param_groups]
    params = [p for group in optimizer.param_groups for p in group['params']]
    per_param = {}
    for index, param_state in state['state'].items():
        p = params[index]
        entry = {}
        for key, value in param_state.items():
            if torch.is_tensor(value):
                if value.device == p.device or value.dim() == 0:  # what the optimizer would keep as it is
                    value = value.clone()
                if hasattr(p, 'device_mesh') and value.shape == p.shape:
                    from torch.distributed.tensor import distribute_tensor
                    value = distribute_tensor(value.to(p.device_mesh.device_type), p.device_mesh, p.placements)
            entry[key] = value
        per_param[index] = entry
    optimizer.load_state_dict({'state': per_param, 'param_groups': state['param_groups']})
    local = getattr(optimizer, 'optim', optimizer)  # ZeRO-1: the rank's own AdamW
    if local is not optimizer:  # ZeRO-1 also kept a second copy of the rank's shard in the wrapper, never read
        optimizer.state.clear()
    for groups in {id(g): g for g in (optimizer.param_groups, local.param_groups)}.values():
        for group, settings in zip(groups, configured):
            group.update(settings)
    # ZeRO-1 loads into its local AdamW and moves each 0-dim tensor ('step') to the CPU, where a fused
    # (or capturable) AdamW on the GPU cannot use it: put 'step' back beside its parameter
    for group in local.param_groups:
        if group.get('fused') or group.get('capturable'):
            for p in group['params']:
                step = local.state.get(p, {}).get('step')
                if torch.is_tensor(step) and step.device != p.device:
                    local.state[p]['step'] = step.to(p.device, torch.float32)


def set_rng_state(state):
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
    cuda = state.get('cuda')
    if torch.is_tensor(cuda) and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda)
    elif cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)  # a checkpoint that kept every device's state of one process


def restore_training_state(ckpt, optimizer, scaler, rank=0, world_size=1, seed=0):
    """After the model is built from ckpt['model'] and parallelized: optimizer, GradScaler, RNG.
    Each rank takes back its own RNG state when the number of ranks is the checkpoint's; otherwise
    rank 0 takes the checkpoint's first and the others are seeded from (seed, rank, iter_num)."""
    if ckpt.get('optimizer') is not None:
        load_optimizer_state(optimizer, ckpt['optimizer'])
    if ckpt.get('scaler') and scaler.is_enabled():
        scaler.load_state_dict(ckpt['scaler'])
    states = ckpt.get('rng_ranks') or ([ckpt['rng']] if 'rng' in ckpt else [])
    if len(states) == world_size:
        set_rng_state(states[rank])
    elif rank == 0 and states:
        set_rng_state(states[0])
    elif states:
        torch.manual_seed(seed + rank * 1_000_003 + ckpt['iter_num'])


def resume_fields(ckpt):
    """What a resumed run keeps of its checkpoint once the state is loaded: the small fields, not the
    tensors (a memory-mapped file stays in use, and on disk after its replacement, while they live)."""
    return {k: v for k, v in ckpt.items() if k not in ('model', 'optimizer', 'rng', 'rng_ranks', 'scaler')}


# -----------------------------------------------------------------------------
# the file

def save_checkpoint(state, path):
    """Write to a temporary file, fsync, rename over path, fsync the folder: a crash at any moment
    leaves either the previous checkpoint or the new one, never a torn file."""
    tmp = path + '.tmp'
    try:
        with open(tmp, 'wb') as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        previous = "the previous checkpoint there is intact" if os.path.exists(path) else "no checkpoint was written"
        raise UserError(f"could not write checkpoint {path} ({e.strerror or e}); {previous}: "
                        f"free disk space or choose another out_dir") from None


def load_checkpoint(path):
    """The checkpoint at path, on CPU, or UserError saying what is wrong with it."""
    if not os.path.isfile(path):
        raise UserError(f"no checkpoint at {path}: train with init_from='scratch' first, or point out_dir at a run")
    try:
        # memory-mapped: the ranks of one machine share the page cache instead of a copy each;
        # weights only: tensors, plain values and safe_globals(), so that loading a file runs no code of it
        with torch.serialization.safe_globals(safe_globals()):
            ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL (\S+) was not an allowed global|but got (<[^>]*>)', str(e))
        if found is None:
            raise UnreadableCheckpoint(path, f"is truncated or not a checkpoint ({type(e).__name__})") from None
        raise UnreadableCheckpoint(path, f"is not a checkpoint of this project: it holds a Python object no "
                                         f"checkpoint holds ({found.group(1) or found.group(2)}); it was not "
                                         f"loaded, since loading it could run code from the file") from None
    except Exception as e:
        raise UnreadableCheckpoint(path, f"is truncated or not a checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise UserError(f"{path} is not a checkpoint of this project (missing "
                        f"{[k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]})")
    if ckpt['version'] != CHECKPOINT_VERSION:
        raise UserError(f"{path} has checkpoint version {ckpt['version']}, this code reads version "
                        f"{CHECKPOINT_VERSION}")
    return ckpt


def checkpoint_paths(out_dir):
    """(ckpt.pt, ckpt_last.pt) of out_dir."""
    return os.path.join(out_dir, BEST_NAME), os.path.join(out_dir, LAST_NAME)


class UnreadableCheckpoint(UserError):
    """A checkpoint file that cannot be loaded: path, and what is wrong with it (reason). Its message
    advises restoring the file; it never advises discarding the run."""

    def __init__(self, path, reason):
        self.path, self.reason = path, reason
        super().__init__(f"{path} {reason}: restore it from a copy, or train anew in another out_dir")


def load_latest(out_dir, log=print):
    """(path, checkpoint) of what init_from='resume' takes: ckpt_last.pt when it exists and is at a
    later iteration than ckpt.pt (or at the same one and written later), else ckpt.pt. Both files are
    memory-mapped, so reading the second costs little more than its small fields.
    ckpt_last.pt exists only beside an older ckpt.pt (the best), so with ckpt.pt unreadable an intact
    ckpt_last.pt is the latest state: the run resumes from it and says so (log), leaving ckpt.pt as it
    is. With ckpt_last.pt unreadable the latest state is lost: the message names the intact ckpt.pt
    and how to resume from it, and nothing is deleted."""
    best, last = checkpoint_paths(out_dir)
    if not os.path.isfile(last):
        return best, load_checkpoint(best)
    try:
        latest = load_checkpoint(last)
    except UnreadableCheckpoint as e:
        if not os.path.isfile(best):
            raise
        other = load_checkpoint(best)
        raise UserError(f"{last}, the latest state, {e.reason}; {best}, the best, is intact (iter "
                        f"{other['iter_num']}): to resume from it, move {last} out of {out_dir} (or restore "
                        f"{last} from a copy)") from None
    if not os.path.isfile(best):
        return last, latest
    try:
        other = load_checkpoint(best)
    except UnreadableCheckpoint as e:
        log(f"{best} {e.reason}: resuming from {last}, the latest state (iter {latest['iter_num']}); {best} is "
            f"left as it is, and replaced when this run saves a new best")
        return last, latest
    if (latest['iter_num'], os.path.getmtime(last)) > (other['iter_num'], os.path.getmtime(best)):
        return last, latest
    return best, other


# -----------------------------------------------------------------------------
# what the fields of an older checkpoint that lacks them stand for (the callers never work it out)

def windows_read(ckpt):
    """The training windows a checkpoint's run read (older checkpoints: iter_num x their windows per
    iteration). Skipped steps read their windows too."""
    if 'windows' in ckpt:
        return ckpt['windows']
    done = ckpt['config']
    return ckpt['iter_num'] * done['gradient_accumulation_steps'] * done['batch_size']


def tokens_trained(ckpt):
    """The tokens a checkpoint's run trained on (older checkpoints: iter_num x their tokens per iteration)."""
    if 'tokens' in ckpt:
        return ckpt['tokens']
    done = ckpt['config']
    return ckpt['iter_num'] * done['gradient_accumulation_steps'] * done['batch_size'] * done['block_size']


def best_val_loss(ckpt):
    """The best validation loss of the checkpoint's run (infinity where it never evaluated)."""
    value = ckpt.get('best_val_loss')
    return float('inf') if value is None else value


def last_eval_iter(ckpt):
    """The iteration of the run's last evaluation (older checkpoints: their own iteration, so that a
    resume from one evaluates nothing first)."""
    return ckpt.get('last_eval_iter', ckpt['iter_num'])


def tokenizer_spec(ckpt, dataset=None):
    """The tokenizer spec {'kind', 'name'} of a checkpoint's model: the checkpoint's own, or (older
    checkpoints, or dataset given) the one in the meta.pkl of dataset or of the checkpoint's dataset.
    UserError, saying why, when there is none (tokenizer.tokenizer_of adds what to pass)."""
    spec = None if dataset else ckpt.get('tokenizer')
    if spec is None:
        from loader import load_meta, resolve_dataset
        dataset = dataset or (ckpt.get('config') or {}).get('dataset')
        if not dataset:
            raise UserError("the checkpoint names neither a tokenizer nor a dataset")
        spec = load_meta(resolve_dataset(dataset)).get('tokenizer')
        if not isinstance(spec, dict):
            raise UserError(f"the meta.pkl of dataset '{dataset}' names no tokenizer (its prepare.py recorded none)")
    return spec


def model_from_checkpoint(ckpt):
    """The Transformer of a loaded checkpoint, its weights in place, on CPU. Built on the meta
    device and filled from the checkpoint: no random initialization of weights about to be replaced."""
    from model import ModelConfig, Transformer
    config = ModelConfig(**ckpt['model_args'])
    with torch.device('meta'):
        model = Transformer(config)
    model.to_empty(device='cpu')
    if config.tie_embeddings:  # to_empty gives each module its own tensor: tie them again
        model.lm_head.weight = model.wte.weight
    model.reset_buffers()
    load_model_state(model, ckpt['model'], 'the checkpoint')
    return model


def inference_device(name, dtype):
    """(device, autocast context) of a script that runs a checkpoint: 'auto' = cuda if available;
    autocast in dtype on GPU, float32 on CPU."""
    if dtype not in ('float32', 'bfloat16', 'float16'):
        raise UserError(f"dtype must be 'float32', 'bfloat16' or 'float16', got {dtype!r}")
    device = name if name != 'auto' else ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise UserError("device='cuda' but no CUDA GPU is visible: pass --device=cpu")
    if device.startswith('cuda') and dtype != 'float32':
        return device, torch.autocast('cuda', dtype=getattr(torch, dtype))
    return device, torch.autocast('cpu', enabled=False)
