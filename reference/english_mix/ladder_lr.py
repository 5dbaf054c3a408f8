"""
Step 3b of the reference comparison (README.md beside this file): the ladder's rungs at their own best
learning rate. config/sweeps/english_ladder_lr.py runs the rungs it names at the rates either side of
the ladder's 2e-3; the ladder (config/sweeps/english_ladder.py) ran them at 2e-3 with the same seeds.
This summarizes the two sweeps' runs of those rungs and seeds together, as one grid over the learning
rate: each rung's best rate by compare.py's rule, its mean and 95% interval, the differences between
rungs at their best (paired: a seed reads the same batches at every rate), and the figures.

    python reference/english_mix/ladder_lr.py                      # the shipped runs: compare/ and ladder_lr/
    python reference/english_mix/ladder_lr.py --ladder_dir=out-english-compare --rates_dir=out-english-ladder-lr

It writes rates_dir/summary (results.json, results.md, figures). Nothing is trained: a run missing from
either folder is counted as not finished, and the rule leaves its rate out.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

import sweep  # noqa: E402
from configurator import Configurator, UserError, run_cli  # noqa: E402

DEFAULTS = dict(
    ladder_dir=os.path.join('reference', 'english_mix', 'compare'),     # the ladder's out_dir (its runs at its one rate)
    rates_dir=os.path.join('reference', 'english_mix', 'ladder_lr'),    # the rates sweep's out_dir; the summary goes in it
    ladder='config/sweeps/english_ladder.py',     # the ladder's sweep file: its overrides set the one learning rate
    rates='config/sweeps/english_ladder_lr.py',   # the rates sweep's file: the rungs, the other rates and the seeds
    metric='eval_bpb',                            # the summary's: 'eval_bpb', 'val_bpb' or 'val_loss' (compare.py)
    summary_dir='summary',                        # the summary's folder inside rates_dir
)


def combined(a):
    """The rates sweep's parsed config and runs, with the ladder's runs of the same groups and seeds added
    at the ladder's learning rate (their settings gain it: the ladder sets it in its overrides)."""
    rates = sweep.parse([a['rates'], f"--out_dir={a['rates_dir']}", f"--metric={a['metric']}",
                         f"--summary_dir={a['summary_dir']}"])
    tuned = sweep.check_keys(rates)
    ladder = sweep.parse([a['ladder'], f"--out_dir={a['ladder_dir']}"])
    sweep.check_keys(ladder)
    if tuned != ['learning_rate'] or 'learning_rate' not in ladder['overrides']:
        raise UserError(f"{a['rates']} must tune learning_rate alone and {a['ladder']} set it in its overrides")
    rate = ladder['overrides']['learning_rate']
    if rate in rates['grid']['learning_rate']:
        raise UserError(f"{a['rates']}'s grid has the ladder's rate {rate}: its runs would be counted twice")
    own = sweep.plan(rates)
    groups = {r.group for r in own}
    seeds = set(rates['grid'].get('seed', []))
    both = [r for r in sweep.plan(ladder) if r.group in groups and r.settings.get('seed') in seeds]
    missing = groups - {r.group for r in both}
    if missing:
        raise UserError(f"{a['ladder']} has no runs of {', '.join(sorted(missing))} at the seeds {sorted(seeds)}")
    for r in both:
        r.settings = {'learning_rate': rate, **r.settings}
    rates['grid'] = dict(rates['grid'], learning_rate=sorted(rates['grid']['learning_rate'] + [rate]))  # the rule's edges
    order = list(rates['configs'])  # the plan's order (seeds outermost, then the groups), the rates ascending
    runs = sorted(own + both, key=lambda r: (r.settings.get('seed'), order.index(r.group), r.settings['learning_rate']))
    return rates, runs, tuned


def main(argv):
    a = Configurator(DEFAULTS).parse(argv)
    c, runs, tuned = combined(a)
    return sweep.summarize(c, runs, tuned)


if __name__ == '__main__':
    run_cli(main)
