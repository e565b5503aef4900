"""DDP with two CPU processes (gloo): correct, not just running.

One launch of tests/ddp_worker.py (Lightning's DDP, its subprocess launcher, the real WGANGP and
GradientPenalty) answers three questions: do the ranks end with identical parameters; do the averaged critic
gradients of one step equal a single-process step on the union of both ranks' data, noise and ε (penalty
included); do the step counters and logged metrics agree across ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from src.regularizers import gradient_norm
from tests.ddp_worker import BATCH, FIRST_SEED, LAMBDA, dataset, model
from tests.helpers import REPO_ROOT, run_cli

pytestmark = pytest.mark.slow  # two processes start torch and Lightning: 30-60 s on two cores


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "tests/ddp_worker.py", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_ddp_strategy_finds_unused_parameters(ranks: list[dict]) -> None:
    for r, rec in enumerate(ranks):
        assert (rec["rank"], rec["world_size"], rec["strategy"], rec["find_unused"]) == (
            r,
            2,
            "DDPStrategy",
            True,
        )
    # the generator takes no part in a critic step: its gradients stay unset while the critic steps
    assert ranks[0]["generator_grads_none"] and ranks[1]["generator_grads_none"]


def test_lightning_injects_a_distributed_sampler(ranks: list[dict]) -> None:
    # Lightning replaces the DataLoader's sampler with a shuffling DistributedSampler seeded by the global seed
    data = dataset()
    shards = []
    for r, rec in enumerate(ranks):
        sampler = DistributedSampler(range(len(data)), num_replicas=2, rank=r, shuffle=True, seed=0)
        shards.append(list(sampler))
        torch.testing.assert_close(rec["first_batch"], data[shards[-1][:BATCH]])
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) + len(shards[1]) == len(data)


def test_each_rank_draws_its_own_random_numbers(ranks: list[dict]) -> None:
    assert not torch.equal(ranks[0]["rng_at_start"], ranks[1]["rng_at_start"])
    torch.testing.assert_close(
        ranks[0]["initial_state"]["fixed_noise"], ranks[1]["initial_state"]["fixed_noise"]
    )


def test_parameters_are_identical_on_both_ranks_after_training(ranks: list[dict]) -> None:
    first, second = ranks[0]["final_state"], ranks[1]["final_state"]
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    initial = ranks[0]["initial_state"]
    assert not torch.equal(first["critic.net.0.weight"], initial["critic.net.0.weight"])  # it did train


def _single_process_critic_grads(initial: dict, real_per_rank: list[torch.Tensor]) -> tuple[dict, dict]:
    """One critic step of Algorithm 1 on the union of the ranks' batches, with their noise and ε."""
    reference = model()
    reference.load_state_dict(initial)
    critic, generator = reference.critic, reference.generator
    zs, epss = [], []
    for r, real in enumerate(real_per_rank):
        torch.manual_seed(FIRST_SEED + r)  # what rank r drew: z first, then the penalty's ε
        zs.append(torch.randn(real.shape[0], generator.latent_dim))
        epss.append(torch.rand(real.shape[0], 1))
    real, z, eps = torch.cat(real_per_rank), torch.cat(zs), torch.cat(epss)  # (2B, 2), (2B, 2), (2B, 1)
    with torch.no_grad():
        fake = generator(z)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    penalty = LAMBDA * (gradient_norm(grad) - 1).pow(2).mean()
    wasserstein = critic(real).mean() - critic(fake).mean()
    params = dict(critic.named_parameters())
    full = torch.autograd.grad(-wasserstein + penalty, list(params.values()), retain_graph=True)
    without_penalty = torch.autograd.grad(-wasserstein, list(params.values()))
    return dict(zip(params, full)), dict(zip(params, without_penalty))


def test_averaged_gradients_equal_one_process_on_the_union(ranks: list[dict]) -> None:
    initial = {k: v for k, v in ranks[0]["initial_state"].items()}
    expected, without_penalty = _single_process_critic_grads(initial, [rec["first_batch"] for rec in ranks])
    for name, grad in expected.items():
        torch.testing.assert_close(ranks[0]["critic_grads"][name], grad, rtol=1e-5, atol=1e-6, msg=name)
        assert torch.equal(ranks[0]["critic_grads"][name], ranks[1]["critic_grads"][name]), name
    # the penalty's double backward contributes, so the check above covers it
    gap = sum((expected[n] - without_penalty[n]).norm() for n in expected)
    assert gap > 1e-2


def test_step_counts_and_logged_metrics_agree_across_ranks(ranks: list[dict]) -> None:
    assert ranks[0]["generator_steps"] == ranks[1]["generator_steps"] == 3
    assert ranks[0]["critic_steps"] == ranks[1]["critic_steps"] == 6
    m0, m1 = ranks[0]["metrics"], ranks[1]["metrics"]
    assert {"train/critic_loss", "train/wasserstein", "train/gp", "train/gen_loss"} <= m0.keys()
    assert m0.keys() == m1.keys()
    for key in m0:
        assert m0[key] == pytest.approx(m1[key], rel=1e-6, abs=1e-7), key


CLI_ARGS = [
    "--config",
    "configs/toy.yaml",
    "--trainer.accelerator=cpu",
    "--trainer.devices=2",
    "--model.generator.init_args.hidden_dim=16",
    "--model.critic.init_args.hidden_dim=16",
    "--data.batch_size=32",
    "--data.batches_per_epoch=4",
    "--model.n_critic=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--quality=null",
    "--best=null",
]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CLI: `--trainer.devices=2` picks DDP, Lightning relaunches `python -m src.train` for rank 1."""
    root = tmp_path_factory.mktemp("ddp_cli")
    run_cli(
        [*CLI_ARGS, f"--trainer.logger.init_args.save_dir={root}", "--model.max_generator_steps=2"],
        timeout=300,
    )
    return root


def test_two_process_cli_run_saves_one_rng_stream_per_rank(cli_run: Path) -> None:
    saved = torch.load(cli_run / "toy/version_0/checkpoints/last.ckpt", weights_only=True)
    assert saved["wgan_gp"]["generator_steps"] == 2
    rng = saved["wgan_gp"]["rng"]["torch"]
    assert rng.shape[0] == 2 and not torch.equal(rng[0], rng[1])
    assert list((cli_run / "toy/version_0/samples").glob("*.png"))  # rank zero drew, nobody deadlocked


def test_two_process_cli_run_resumes_from_last(cli_run: Path) -> None:
    last = cli_run / "toy/version_0/checkpoints/last.ckpt"
    args = [*CLI_ARGS, f"--trainer.logger.init_args.save_dir={cli_run}", "--model.max_generator_steps=4"]
    proc = run_cli([*args, "--ckpt_path", "last"], timeout=300)
    assert f"Restored all states from the checkpoint at {last}" in proc.stdout + proc.stderr
    assert torch.load(last, weights_only=True)["wgan_gp"]["generator_steps"] == 4


def test_the_designs_four_device_command_runs_on_the_default_config(tmp_path: Path) -> None:
    """`python -m src.train --trainer.devices=4` (issue 14, item 1): the digits val split (162 images) at batch
    64 makes 3 batches for 4 ranks; every rank must still get one, and the run must write its outputs once."""
    proc = run_cli(
        [
            "--trainer.devices=4",
            "--trainer.accelerator=cpu",
            "--model.max_generator_steps=2",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ],
        timeout=600,
    )
    assert "Starting with 4 processes" in proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "digits").iterdir()] == ["version_0"]  # one run directory
    run = tmp_path / "digits" / "version_0"
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert header.startswith("epoch,step") and "epoch,step" not in "".join(rows)  # one writer, one header
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["wgan_gp"]["generator_steps"] == 2
