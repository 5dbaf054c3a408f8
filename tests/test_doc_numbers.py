"""
Numbers the docs quote about the model, checked against the code that makes them: every
"P parameters (M in matmuls)" of TRAINING_GUIDE.md is a 1.36B config's num_params() and
num_matmul_params() (the N of 6N), so the two conventions cannot drift apart again.
"""
import json
import os
import re
import subprocess
import sys

import torch

import train
from helpers import REPO
from model import Transformer


def built(config_file):
    c = train.parse_config([config_file])
    with torch.device('meta'):
        return Transformer(train.model_config(c, None, c.vocab_size))


def test_parameters_in_matmuls_quoted_in_the_guide():
    text = open(os.path.join(REPO, 'TRAINING_GUIDE.md')).read().replace('\n', ' ')
    quoted = re.findall(r'([\d,]{9,}) parameters? \(([\d,]{9,}) in matmuls', text)
    quoted += re.findall(r'1\.36B\s+([\d,]{9,}) \(([\d,]{9,}) in matmuls', text)
    counts = {(m.num_params(), m.num_matmul_params()) for m in map(built, ('config/full_llama_1.36b.py',
                                                                            'config/full_gpt2_1.36b.py'))}
    numbers = {(int(p.replace(',', '')), int(q.replace(',', ''))) for p, q in quoted}
    assert numbers and numbers <= counts, (numbers, counts)
    assert len(numbers) == 2  # both models are quoted


# -----------------------------------------------------------------------------
# flops_parameter_counting/README.md's table "The 1.36B models, as the tool prints them" and the
# verify config's printed block: each number is the tool's own output at its defaults

COST_DIR = os.path.join(REPO, 'flops_parameter_counting')
GIB = 2 ** 30


def cost_tool(*args):
    proc = subprocess.run([sys.executable, os.path.join(COST_DIR, 'detailed_cost_analysis.py'), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cost_readme():
    with open(os.path.join(COST_DIR, 'README.md')) as f:
        return f.read()


def table_after(text, heading):
    """{first cell: [other cells]} of the first markdown table after heading."""
    section = text[text.index(heading):]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith('|'):
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if not all(c and set(c) <= set('-: ') for c in cells):  # not the |---| line
                rows[cells[0]] = cells[1:]
        elif rows:
            break
    return rows


def expected_row_cells(arch):
    """The cells of the README's table for one model, made from the tool's output at its defaults."""
    config = f'config/full_{arch}_1.36b.py'
    one = json.loads(cost_tool('--model_config', config, '--json'))
    four = json.loads(cost_tool('--model_config', config, '--num_gpus', '4', '--json'))
    p, f, t, mem = one['parameters'], one['flops_per_token'], one['training_flops'], one['memory']
    plain, per4 = mem['per_gpu']['plain'], four['memory']['per_gpu']
    loss, d_opt = one['predicted_loss'], one['compute_optimal_tokens']
    return t['tokens'], mem['batch_size'], mem['seq_len'], {
        'parameters': f"{p['total']:,}",
        'matmul parameters N (6N)': f"{p['matmul']:,}",
        f"training FLOPs per token, 6N + 12LHQT (T = {f['seq_len']})": f"{f['training']:,}",
        'forward FLOPs per token': f"{f['forward']:,}",
        'training FLOPs for D tokens': f"{t['flops']:.4e}",
        'activations per layer per token (compiled, bf16 stream)':
            f"{sum(mem['activations_per_layer_per_token'].values()):,} bytes",
        'activations, micro-batch B x T': f"{sum(mem['activations'].values()) / GIB:.2f} GiB",
        'memory per GPU, 1 GPU (allocated / with overhead)':
            f"{plain['total allocated'] / GIB:.2f} / {plain['total with allocator and CUDA context'] / GIB:.2f} GiB",
        'memory per GPU, 4 GPUs: DDP / ZeRO-1 / FSDP (allocated)':
            ' / '.join(f"{per4[k]['total allocated'] / GIB:.2f}" for k in ('ddp', 'zero1', 'fsdp')) + ' GiB',
        f"tokens/s on 1 {one['time']['gpu'].split()[0]} at {one['time']['mfu']:.0%} MFU":
            f"{one['time']['tokens_per_second']:,.0f}",
        'loss at D tokens, Hoffmann / Besiroglu': f"{loss['hoffmann']:.4f} / {loss['besiroglu']:.4f}",
        'compute-optimal D for this N, Hoffmann / Besiroglu':
            f"{d_opt['hoffmann'] / 1e9:.1f}B / {d_opt['besiroglu'] / 1e9:.1f}B tokens",
    }


def test_cost_tool_readme_table_is_the_tools_output():
    """Every cell of the table is what the tool prints at its defaults (D = --tokens' default); the
    README said 5.4222e19 training FLOPs for LLaMA, the FLOPs of 6.5e9 tokens, against the 5.4669e19
    the default 6.5536e9 gives."""
    rows = table_after(cost_readme(), '## The 1.36B models, as the tool prints them')
    assert rows.pop('') == ['LLaMA 1.36B', 'GPT-2 1.36B']
    (tokens, batch, seq, llama), (_, _, _, gpt2) = expected_row_cells('llama'), expected_row_cells('gpt2')
    # the README names D, B and T in its row labels
    named = {'D': f"{tokens / 1e9:.5g}B", 'B x T': f"{batch} x {seq}"}
    expected = {label.replace('B x T', named['B x T']).replace('D tokens', f"D = {named['D']} tokens"): [llama[label], gpt2[label]]
                for label in llama}
    assert rows == expected


def test_cost_tool_readme_eager_memory():
    text = cost_readme().replace('\n', ' ')
    quoted = re.search(r'`--eager` gives ([\d.]+) and ([\d.]+) GiB on 1 GPU', text)
    assert quoted, "the README's eager figures are not where this test reads them"
    for arch, doc in zip(('llama', 'gpt2'), quoted.groups()):
        out = json.loads(cost_tool('--model_config', f'config/full_{arch}_1.36b.py', '--eager', '--json'))
        assert doc == f"{out['memory']['per_gpu']['plain']['total allocated'] / GIB:.2f}", arch


def test_cost_tool_readme_verify_block_is_the_tools_output():
    """The block the README says the verify config prints is what it prints, line for line."""
    text = cost_readme()
    config = 'configs/scaling_laws/custom/verify_llama_1.36b.jsonc'
    block = re.search(r'`' + re.escape(config) + r'` prints:\n\n```\n(.*?)```', text, flags=re.S)
    assert block, "the README's verify block is not where this test reads it"
    assert block.group(1) == cost_tool('--backward_config', config)
