"""Cost of the gradient penalty: a critic step with the penalty against one without.

Three critic steps on the same networks and batch, timed in alternating order, median of the per-repetition
ratios: plain (WGAN loss only), the project's ``GradientPenalty`` (separate forward on the interpolates),
and a "concatenated" step that runs real, fake and interpolates through one forward and differentiates the
whole batch twice (common in other code). Writes the table into BENCHMARKS.md.

    python -m bench.gp_cost [--reps 7] [--iters 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import median, stamp, write_section
from src.nets import DCGANCritic, ResNetCritic
from src.regularizers import GradientPenalty

CASES = {
    "DCGAN-32 critic (dim 64), batch 64": lambda: DCGANCritic((3, 32, 32), dim=64),
    "ResNet-32 critic (dim 128), batch 64": lambda: ResNetCritic((3, 32, 32), dim=128),
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


STEPS = {"plain": plain_step, "project GP": project_step, "concatenated GP": concatenated_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--iters", type=int, default=5, help="critic steps per timing")
    args = parser.parse_args()
    rows = []
    for name, make in CASES.items():
        torch.manual_seed(0)
        critic = make()
        opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9))
        real, fake = torch.randn(64, 3, 32, 32), torch.randn(64, 3, 32, 32)
        for step in STEPS.values():  # warm-up
            step(critic, opt, real, fake)
        times: dict[str, list[float]] = {k: [] for k in STEPS}
        for rep in range(args.reps):
            order = list(STEPS) if rep % 2 == 0 else list(reversed(STEPS))
            for key in order:
                start = time.perf_counter()
                for _ in range(args.iters):
                    STEPS[key](critic, opt, real, fake)
                times[key].append((time.perf_counter() - start) / args.iters)
        ratio = {k: median([t / p for t, p in zip(times[k], times["plain"])]) for k in STEPS}
        print(name, {k: f"{median(v) * 1000:.0f} ms" for k, v in times.items()}, flush=True)
        rows.append(
            f"| {name} | {median(times['plain']) * 1000:.0f} | {median(times['project GP']) * 1000:.0f} | "
            f"**{ratio['project GP']:.2f}×** | {median(times['concatenated GP']) * 1000:.0f} | {ratio['concatenated GP']:.2f}× |"
        )
    table = "\n".join(
        [
            "| critic | plain step (ms) | with GP, project (ms) | project / plain | with GP, concatenated (ms) | concatenated / plain |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    body = f"### Gradient-penalty cost\n\n{table}\n\nMedian of {args.reps} alternating repetitions of {args.iters} steps. {stamp()}"
    print(body)
    write_section("gp_cost", body)


if __name__ == "__main__":
    main()
