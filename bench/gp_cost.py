"""Cost of the gradient penalty: a critic step with the penalty against one without, and spectral norm.

Four critic steps on the same networks and batch, timed in alternating order, median of the per-repetition
ratios: plain (WGAN loss only), the project's ``GradientPenalty`` (separate forward on the interpolates),
a "concatenated" step that runs real, fake and interpolates through one forward and differentiates the
whole batch twice (common in other code), and spectral normalisation (the same architecture with
``norm="spectral"``, hinge loss, no penalty: one power iteration per layer and forward, no double backward).
Runs only on a quiet machine (load average < 1.5) and writes the table, with the load, into BENCHMARKS.md.

    python -m bench.gp_cost [--reps 7] [--iters 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import median, require_quiet, stamp, write_section
from src.models.losses import critic_loss
from src.nets import DCGANCritic, ResNetCritic
from src.regularizers import GradientPenalty

CASES = {  # name -> critic of a given norm ("none" or "spectral")
    "DCGAN-32 critic (dim 64), batch 64": lambda norm: DCGANCritic((3, 32, 32), dim=64, norm=norm),
    "ResNet-32 critic (dim 128), batch 64": lambda norm: ResNetCritic((3, 32, 32), dim=128, norm=norm),
}


def plain_step(critic, opt, real, fake) -> None:
    loss = critic(fake).mean() - critic(real).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


PENALTY = GradientPenalty(10.0)


def project_step(critic, opt, real, fake) -> None:
    loss = critic(fake).mean() - critic(real).mean() + PENALTY.penalty(critic, real, fake)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def concatenated_step(critic, opt, real, fake) -> None:
    b = real.shape[0]
    eps = torch.rand(b, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    x = torch.cat([real, fake, x_hat]).requires_grad_(True)
    scores = critic(x)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    gp = 10.0 * (grad[2 * b :].flatten(1).norm(dim=1) - 1).pow(2).mean()
    loss = scores[b : 2 * b].mean() - scores[:b].mean() + gp
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def spectral_step(critic, opt, real, fake) -> None:
    loss = critic_loss("hinge", critic(real), critic(fake))  # critic built with norm="spectral"
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


STEPS = {
    "plain": plain_step,
    "project GP": project_step,
    "concatenated GP": concatenated_step,
    "SN hinge": spectral_step,
}
NORMS = {"SN hinge": "spectral"}  # the critic each step runs on; "none" otherwise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--iters", type=int, default=5, help="critic steps per timing")
    args = parser.parse_args()
    load = require_quiet()
    rows = []
    for name, make in CASES.items():
        torch.manual_seed(0)
        nets = {}
        for norm in ("none", "spectral"):
            critic = make(norm)
            nets[norm] = (critic, torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9)))
        real, fake = torch.randn(64, 3, 32, 32), torch.randn(64, 3, 32, 32)
        for key, step in STEPS.items():  # warm-up
            step(*nets[NORMS.get(key, "none")], real, fake)
        times: dict[str, list[float]] = {k: [] for k in STEPS}
        for rep in range(args.reps):
            order = list(STEPS) if rep % 2 == 0 else list(reversed(STEPS))
            for key in order:
                start = time.perf_counter()
                critic, opt = nets[NORMS.get(key, "none")]
                for _ in range(args.iters):
                    STEPS[key](critic, opt, real, fake)
                times[key].append((time.perf_counter() - start) / args.iters)
        ratio = {k: median([t / p for t, p in zip(times[k], times["plain"])]) for k in STEPS}
        print(name, {k: f"{median(v) * 1000:.0f} ms" for k, v in times.items()}, flush=True)
        rows.append(
            f"| {name} | {median(times['plain']) * 1000:.0f} | {median(times['project GP']) * 1000:.0f} | "
            f"**{ratio['project GP']:.2f}×** | {median(times['concatenated GP']) * 1000:.0f} | {ratio['concatenated GP']:.2f}× | "
            f"{median(times['SN hinge']) * 1000:.0f} | **{ratio['SN hinge']:.2f}×** |"
        )
    table = "\n".join(
        [
            "| critic | plain step (ms) | with GP, project (ms) | project / plain | with GP, concatenated (ms) | concatenated / plain | SN + hinge, no GP (ms) | SN / plain |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    body = f"### Gradient-penalty cost\n\n{table}\n\nMedian of {args.reps} alternating repetitions of {args.iters} steps. {stamp(load)}"
    print(body)
    write_section("gp_cost", body)


if __name__ == "__main__":
    main()
