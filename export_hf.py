"""
Checkpoint -> Hugging Face folder: LlamaForCausalLM or GPT2LMHeadModel, plus the dataset's tokenizer.

    python export_hf.py --out_dir=out-llama-1.36b          # writes hf-llama-1.36b
    python export_hf.py --ckpt=out-llama-1.36b/ckpt.pt --out=hf-llama-1.36b --dtype=bfloat16
    python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('hf-llama-1.36b')"

Arguments are --key=value, as for the other scripts (--help lists the keys); the argparse spellings
it once took (--ckpt PATH --out DIR --force) work too.

The weights map one to one (config/ARCH_LLAMA.md, config/ARCH_GPT2.md): the exported model gives the
same logits as ours (fp32, max abs difference under 1e-4; tests/test_model.py checks it, and every
export checks it again on a probe sequence before writing). Only the two standard mixes can be
exported: RMSNorm + RoPE + SwiGLU (LLaMA) and LayerNorm + learned positions + GELU (GPT-2), pre-norm.
The conversion itself is hf_format.py's.
"""

import os

from configurator import DTYPES, Configurator, UserError, run_cli
from hf_format import check_out_dir, found_tokenizer, hf_arch, save_hf

DEFAULTS = dict(
    out_dir='out',             # the run whose ckpt.pt to export (as for sample.py and eval_bpb.py)
    ckpt='',                   # a checkpoint file to export instead of out_dir/ckpt.pt
    out='',                    # the folder to write; '' = hf-NAME beside the run's folder out-NAME (or NAME)
    force=False,               # write into out even if it is not empty
    dtype='float32',           # the saved weights' dtype; 'float32' is the checkpoint's
)
CHOICES = dict(dtype=DTYPES)   # allowed values, checked as the arguments are read


def hf_folder(ckpt_path):
    """The default folder for a checkpoint's export: hf-NAME beside its run's folder out-NAME (or NAME)."""
    run_dir = os.path.dirname(os.path.normpath(ckpt_path)) or os.curdir
    name = os.path.basename(os.path.abspath(run_dir))
    parent = os.path.dirname(run_dir) if run_dir != os.curdir else os.pardir
    return os.path.join(parent, 'hf-' + (name[len('out-'):] if name.startswith('out-') else name))


def export(ckpt_path, out_dir, force=False, dtype='float32'):
    from checkpoint import load_checkpoint, model_from_checkpoint
    from parallelize import quiet_torchao_import
    quiet_torchao_import()  # transformers imports torchao where it is installed: its load warnings are noise here
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise UserError(f"export_hf.py needs transformers: pip install transformers ({e})") from None
    check_out_dir(out_dir, force)
    ckpt = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(ckpt)
    ckpt = {key: ckpt.get(key) for key in ('tokenizer', 'config')}  # free the weights and optimizer state
    try:
        hf_arch(model.config)
    except ValueError as e:
        raise UserError(f"{ckpt_path}: {e}") from None
    save_hf(model, found_tokenizer(ckpt), out_dir, dtype, ckpt_path)


def main(argv):
    configurator = Configurator(DEFAULTS, choices=CHOICES, argparse_spellings=True)
    c = configurator.parse(argv)
    if 'ckpt' in configurator.assigned and 'out_dir' in configurator.assigned:
        raise UserError("--ckpt names the checkpoint file and --out_dir its run folder: give one")
    ckpt = c['ckpt'] or os.path.join(c['out_dir'], 'ckpt.pt')
    export(ckpt, c['out'] or hf_folder(ckpt), force=c['force'], dtype=c['dtype'])
    return 0


if __name__ == '__main__':
    run_cli(main)
