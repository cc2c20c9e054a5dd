"""Calibrate the SGLD settings of the LLC on a trained run (re-runnable by anyone).

    python examples/calibrate_llc.py RUN [--steps 500 2250] [--step-sizes 1e-5 1e-4 1e-3]
        [--nbetas 30 100 300]

For each checkpoint and each (step size, nbeta) it runs :func:`mbc_interp.analysis.dynamics.llc.
estimate_llc` with the other :class:`LLCConfig` defaults and prints the estimate beside the
trace checks of :meth:`LLCResult.health`: a setting passes when the chain-averaged loss has
settled (|drift| < 0.3 of the excess), never sits below the initial loss (below_init_frac = 0)
and has no spike (spike < 2). A good default passes at every checkpoint with the largest step
size that does (mixing is fastest there).

Result on the default run (``mbc train --out /tmp/calib_run``: plateau until ~step 800, loss
drop ~1000-2000, stopped solved at 2250), localization 100, 2 chains x (50 burn-in + 100
draws), batch 256, ``--steps 500 2250 --step-sizes 1e-4 1e-3 --nbetas 30 100``::

      step      eps  nbeta       llc     std   drift  below  spike   sec  ok
       500    1e-04     30     6.112   0.297    0.81   0.00   1.39  35.5  NO
       500    1e-04    100    11.051   0.726    0.63   0.00   1.28  37.1  NO
       500    1e-03     30     8.724   0.020    0.24   0.00   1.16  35.4  yes
       500    1e-03    100    24.485   1.508    0.02   0.00   1.18  35.2  yes
      2250    1e-04     30    58.437   2.125   -0.08   0.00   1.07  32.8  yes
      2250    1e-04    100   158.797   2.083    0.01   0.00   1.03  21.7  yes
      2250    1e-03     30    62.058   0.513   -0.02   0.00   1.05  33.3  yes
      2250    1e-03    100   214.660   5.060   -0.04   0.00   1.11  42.5  yes

(seconds on a 2-core machine shared with other jobs.) At step size 1e-4 the plateau chains are
still climbing after 150 steps (drift 0.6-0.8); 1e-3 settles everywhere, never sits below the
initial loss and has no spike, so the defaults are step_size 1e-3, nbeta 100 (drift 0.02 and
-0.04). Caveat: the solved checkpoint's estimate still depends on the step size (159 at 1e-4
vs 215 at 1e-3 for nbeta 100), so compare LLCs only at one setting. An earlier pass at 1e-5
(nbeta 30, 100) had not settled either (drift 0.64, 0.37).

Result on the grokking preset (``sweeps/grokking_cpu.toml``'s run ``p59_f0.4_lr0.001_b1392_s0``:
memorised by step ~130, test loss's drop at ~5,700, groups solved 6,400-7,300), the same chains,
``--steps 300 3000 --step-sizes 1e-5 3e-5 1e-4 3e-4 --nbetas 30 100`` then ``--steps 5500
7900 --step-sizes 3e-4 1e-3 --nbetas 30 100``::

        step      eps  nbeta       llc     std   drift  below  spike   sec  ok
         300    1e-05     30    26.569   1.690    1.05   0.00   1.50 134.7  NO
         300    1e-05    100    59.636   2.574    0.98   0.00   1.49  42.6  NO
         300    3e-05     30    83.225   3.656    0.75   0.00   1.36  63.8  NO
         300    3e-05    100   179.843   5.320    0.76   0.00   1.37 143.2  NO
         300    1e-04     30   192.386   3.735    0.43   0.00   1.18  99.2  NO
         300    1e-04    100   409.535   7.168    0.44   0.00   1.18 123.5  NO
         300    3e-04     30   279.145   3.469    0.13   0.00   1.06  53.4  yes
         300    3e-04    100   606.020   7.322    0.12   0.00   1.07  57.8  yes
        3000    1e-05     30    34.635   2.506    0.35   0.00   1.20  55.5  NO
        3000    1e-05    100    40.314   2.012    0.39   0.00   1.15  55.0  NO
        3000    3e-05     30    65.722   0.767    0.48   0.00   1.18  59.0  NO
        3000    3e-05    100   110.073   1.199    0.72   0.00   1.33  60.8  NO
        3000    1e-04     30   156.709   1.866    0.43   0.00   1.16  60.9  NO
        3000    1e-04    100   333.336   7.757    0.38   0.00   1.13  67.0  NO
        3000    3e-04     30   262.687   5.048    0.07   0.00   1.03  76.3  yes
        3000    3e-04    100   594.829  26.408   -0.11   0.00   1.06  50.8  yes
        5500    3e-04     30   328.518  13.928   -0.06   0.00   1.11  72.6  yes
        5500    3e-04    100   609.979  30.913   -0.10   0.00   1.18 108.0  yes
        5500    1e-03     30   652.154  19.920    0.04   0.00   1.30 104.4  yes
        5500    1e-03    100       nan     nan     nan   0.00    nan 108.3  NO
        7900    3e-04     30   188.078   2.496    0.02   0.00   1.05 112.3  yes
        7900    3e-04    100   298.842  11.097    0.07   0.00   1.08 121.6  yes
        7900    1e-03     30   349.576   8.567   -0.02   0.00   1.07 113.2  yes
        7900    1e-03    100       nan     nan     nan   0.00    nan 107.6  NO

Step sizes up to 1e-4 are still climbing (drift 0.35-1.05); 1e-3 diverges at nbeta 100 once
the training loss is near 0. 3e-4 settles at every checkpoint at both nbetas, so it is the
task's calibrated step size (``ModularAdditionTask.kind_defaults``), with the kind's nbeta 100.
At that setting the estimate is flat from memorisation through the plateau (606, 595, 610) and
halves after the drop (299).
"""

from __future__ import annotations

import argparse
import time

import torch

from mbc_interp import load_run
from mbc_interp.analysis.dynamics.llc import LLCConfig, estimate_llc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run")
    p.add_argument("--steps", type=int, nargs="+", default=None)
    p.add_argument("--step-sizes", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3])
    p.add_argument("--nbetas", type=float, nargs="+", default=[30.0, 100.0, 300.0])
    p.add_argument("--localization", type=float, default=LLCConfig().localization)
    args = p.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    steps = args.steps or [run.steps[len(run.steps) // 3], run.steps[-1]]
    print(f"{'step':>6} {'eps':>8} {'nbeta':>6} {'llc':>9} {'std':>7} {'drift':>7} "
          f"{'below':>6} {'spike':>6} {'sec':>5}  ok")  # fmt: skip
    for step in steps:
        model = run.model(step, device="cpu")
        for eps in args.step_sizes:
            for nbeta in args.nbetas:
                cfg = LLCConfig(step_size=eps, nbeta=nbeta, localization=args.localization)
                t0 = time.perf_counter()
                res = estimate_llc(model, run.task, cfg)
                sec = time.perf_counter() - t0
                h = res.health()
                ok = abs(h["drift"]) < 0.3 and h["below_init_frac"] == 0 and h["spike"] < 2
                print(f"{step:>6} {eps:>8.0e} {nbeta:>6g} {res.llc:>9.3f} {res.llc_std:>7.3f} "
                      f"{h['drift']:>7.2f} {h['below_init_frac']:>6.2f} {h['spike']:>6.2f} "
                      f"{sec:>5.1f}  {'yes' if ok else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
