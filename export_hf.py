"""
Checkpoint -> Hugging Face folder: LlamaForCausalLM or GPT2LMHeadModel, plus the dataset's tokenizer.

    python export_hf.py --ckpt out-llama-1.36b/ckpt.pt --out hf-llama-1.36b
    python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('hf-llama-1.36b')"

The weights map one to one (docs/ARCH_LLAMA.md, docs/ARCH_GPT2.md): the exported model gives the
same logits as ours (fp32, max abs difference under 1e-4; tests/test_model.py checks it, and every
export checks it again on a probe sequence before writing). Only the two standard mixes can be
exported: RMSNorm + RoPE + SwiGLU (LLaMA) and LayerNorm + learned positions + GELU (GPT-2), pre-norm.
The conversion itself is hf_format.py's.
"""

import argparse

from configurator import UserError, run_cli
from hf_format import check_out_dir, found_tokenizer, hf_arch, save_hf


def export(ckpt_path, out_dir, force=False, dtype='float32'):
    from checkpoint import load_checkpoint, model_from_checkpoint
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
    parser = argparse.ArgumentParser(description="Export a checkpoint to a Hugging Face model folder.")
    parser.add_argument('--ckpt', required=True, help="checkpoint file, e.g. out-llama-1.36b/ckpt.pt")
    parser.add_argument('--out', required=True, help="folder to write (config.json, model.safetensors, tokenizer)")
    parser.add_argument('--force', action='store_true', help="write into --out even if it is not empty")
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'),
                        help="dtype of the saved weights (default: float32, the checkpoint's)")
    args = parser.parse_args(argv)
    export(args.ckpt, args.out, force=args.force, dtype=args.dtype)
    return 0


if __name__ == '__main__':
    run_cli(main)
