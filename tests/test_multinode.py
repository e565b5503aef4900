"""Multi-node launches on one machine: torchrun with 2 nodes x 1 process, and SLURM simulated for 2 tasks.

Both go through the repository's launch files (scripts/torchrun_multinode.sh, scripts/slurm/train.sbatch), on
127.0.0.1 with gloo. A resume may change the number of nodes or devices when data.global_batch_size keeps the
global batch; without it the change is refused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.utils.resume import config_differences
from tests.helpers import REPO_ROOT, run_cli
from tests.test_ddp import _single_process_critic_grads

# The toy of tests/test_ddp.py's model (MLPs of width 16, λ = 10), 2 generator steps, a global batch of 64.
ARGS = [
    "--config", "configs/toy.yaml", "--trainer.accelerator=cpu",
    "--model.generator.init_args.hidden_dim=16", "--model.critic.init_args.hidden_dim=16",
    "--data.global_batch_size=64", "--data.batches_per_epoch=4", "--model.n_critic=2",
    "--regularizer.init_args.weight=10", "--model.num_fixed_samples=64",  # tests/ddp_worker.py's model
    "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false", "--quality=null", "--best=null", "--samples.every_n_epochs=1000",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recorder(out: Path, sigusr1_at: int | None = None) -> str:
    init = {"out": str(out), "sigusr1_at": sigusr1_at}
    return "--trainer.callbacks+=" + json.dumps(
        {"class_path": "tests.cluster_recorder.ClusterRecorder", "init_args": init}
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_", "TORCHELASTIC"))}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **extra}


def _wait(procs: list[subprocess.Popen], timeout: int = 240) -> list[str]:
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-5000:]
    return outputs


def test_device_count_may_change_on_resume_only_with_a_global_batch() -> None:
    def config(devices: int, nodes: int, global_batch: int | None) -> dict:
        strategy = "auto" if devices * nodes == 1 else "ddp_find_unused_parameters_true"
        return {
            "trainer": {"devices": devices, "num_nodes": nodes, "strategy": strategy},
            "data": {"init_args": {"batch_size": 32, "global_batch_size": global_batch}},
        }

    differences, allowed = config_differences(config(1, 2, 64), config(1, 1, 64))
    assert differences == [] and any(line.startswith("trainer.num_nodes") for line in allowed)
    differences, allowed = config_differences(config(2, 1, 64), config(4, 2, 64))
    assert differences == [] and len(allowed) == 2  # devices, num_nodes (the strategy stays DDP)
    assert config_differences(config(2, 1, None), config(1, 2, None))[0] == []  # same world size, same batch
    differences, _ = config_differences(config(1, 2, None), config(1, 1, None))
    assert [d.split(":")[0] for d in differences] == ["trainer.num_nodes", "trainer.strategy"]
    assert "set data.global_batch_size" in differences[0]
    fsdp = config(1, 1, 64)
    fsdp["trainer"]["strategy"] = "fsdp"
    assert config_differences(config(1, 2, 64), fsdp)[0]  # another strategy is not a device count


def test_a_resume_on_more_devices_without_a_global_batch_is_refused(tmp_path: Path) -> None:
    args = [*ARGS[:5], "--data.batch_size=16", *ARGS[6:], f"--trainer.default_root_dir={tmp_path}"]
    run_cli([*args, "--model.max_generator_steps=1"])
    proc = run_cli_failing(
        [*args, "--trainer.devices=2", "--ckpt_path=last", "--model.max_generator_steps=2"]
    )
    assert (
        "CheckpointMismatchError" in proc.stderr
        and "trainer.devices: 'auto' in the run, '2' now" in proc.stderr
    )
    assert "set data.global_batch_size" in proc.stderr


def run_cli_failing(args: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", *args],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    return proc


@pytest.mark.slow
def test_torchrun_two_nodes_one_run_equal_gradients_and_resume_on_one_node(tmp_path: Path) -> None:
    rec = tmp_path / "ranks"
    args = [*ARGS, f"--trainer.default_root_dir={tmp_path}", "--model.max_generator_steps=2", _recorder(rec)]
    port = str(_free_port())
    nodes = [
        subprocess.Popen(
            ["bash", "scripts/torchrun_multinode.sh", *args],
            cwd=REPO_ROOT,
            env=_env(NNODES="2", NODE_RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in (0, 1)
    ]  # fmt: skip
    outputs = _wait(nodes)
    assert "25gaussians: global batch 64 (32 per device x 2 device(s))" in outputs[0]
    assert "MEMBER: 1/2" in outputs[0] and "MEMBER: 2/2" in outputs[1]  # Lightning's world size, per node
    info = [json.loads((rec / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(i["rank"], i["node_rank"], i["world_size"]) for i in info] == [(0, 0, 2), (1, 1, 2)]
    assert {i["environment"] for i in info} == {"TorchElasticEnvironment"}
    runs = sorted((tmp_path / "runs" / "toy").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # one run directory for both nodes
    ranks = [torch.load(rec / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    expected, _ = _single_process_critic_grads(ranks[0]["initial_state"], [r["first_batch"] for r in ranks])
    for name, grad in expected.items():
        torch.testing.assert_close(ranks[0]["critic_grads"][name], grad, rtol=1e-5, atol=1e-6, msg=name)
        assert torch.equal(ranks[0]["critic_grads"][name], ranks[1]["critic_grads"][name]), name

    # the allocation shrinks to one node: the global batch stays 64, so the run resumes
    resumed = [a if a != "--model.max_generator_steps=2" else "--model.max_generator_steps=4" for a in args]
    proc = run_cli(
        [*resumed, "--trainer.num_nodes=1", "--trainer.devices=1", "--ckpt_path=last"], timeout=300
    )
    out = proc.stdout + proc.stderr
    assert "with a new run length or device count" in out and "trainer.num_nodes: 2 in the run, 1 now" in out
    assert "global batch 64 (64 per device x 1 device(s))" in out
    last = torch.load(runs[0] / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["wgan_gp"]["generator_steps"] == 4
    assert json.loads((rec / "rank0.json").read_text())["generator_steps_at_start"] == 2


@pytest.mark.slow
def test_slurm_two_tasks_ranks_and_sigusr1_requeue_checkpoint_resumed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # srun stand-in: start SLURM_NTASKS local tasks with their SLURM rank variables, as srun does
    (bin_dir / "srun").write_text(
        "#!/bin/bash\npids=()\nfor ((i=0; i<SLURM_NTASKS; i++)); do\n"
        '  SLURM_PROCID=$i SLURM_LOCALID=$i "$@" > "$SRUN_LOG_DIR/task$i.log" 2>&1 & pids+=($!)\ndone\n'
        'code=0; for p in "${pids[@]}"; do wait "$p" || code=$?; done; exit $code\n'
    )
    (bin_dir / "scontrol").write_text('#!/bin/bash\necho "$@" > "$SRUN_LOG_DIR/scontrol.txt"\n')
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    root, rec = tmp_path / "root", tmp_path / "ranks"
    slurm = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "SRUN_LOG_DIR": str(tmp_path), "WGAN_ROOT": str(root),
        "SLURM_SUBMIT_DIR": str(REPO_ROOT), "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "wgan-gp",
        "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0",
        "SLURM_NODELIST": "127.0.0.1", "MASTER_PORT": str(_free_port()),
    }  # fmt: skip

    def sbatch(*extra: str) -> str:
        proc = subprocess.run(
            ["bash", "scripts/slurm/train.sbatch", *ARGS, *extra],
            cwd=REPO_ROOT, env=_env(**slurm), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        logs = "".join((tmp_path / f"task{i}.log").read_text() for i in (0, 1))
        assert proc.returncode == 0, logs[-6000:] + proc.stderr[-2000:]
        return logs

    sbatch("--model.max_generator_steps=3", _recorder(rec, sigusr1_at=2))
    info = [json.loads((rec / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(i["rank"], i["local_rank"], i["world_size"]) for i in info] == [(0, 0, 2), (1, 1, 2)]
    assert {i["environment"] for i in info} == {"SLURMEnvironment"}
    assert (tmp_path / "scontrol.txt").read_text().split() == [
        "requeue",
        "4242",
    ]  # rank zero requeued the job
    (hpc,) = root.glob("hpc_ckpt_*.ckpt")
    assert torch.load(hpc, weights_only=True)["wgan_gp"]["generator_steps"] == 2
    logs = sbatch("--model.max_generator_steps=5", _recorder(rec, sigusr1_at=2))  # the requeued job
    assert f"resuming SLURM's requeue checkpoint {hpc}" in logs
    assert json.loads((rec / "rank1.json").read_text())["generator_steps_at_start"] == 2
