"""The strategy the CLI picks for several devices or nodes, parsed on this CPU machine without launching."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from src.cli import DDP_STRATEGY, build_cli

BASE = ["--trainer.accelerator=cpu", "--trainer.logger=false"]


def test_several_nodes_choose_ddp_with_unused_parameters(tmp_path: Path) -> None:
    cli = build_cli(
        [*BASE, "--trainer.devices=1", "--trainer.num_nodes=2", f"--trainer.default_root_dir={tmp_path}"]
    )
    assert cli.config.trainer.strategy == DDP_STRATEGY
    assert isinstance(cli.trainer.strategy, DDPStrategy)
    assert cli.trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert cli.trainer.num_nodes == 2 and cli.trainer.world_size == 2


def test_four_cpu_devices_give_a_world_of_four_with_a_per_device_batch(tmp_path: Path) -> None:
    cli = build_cli(
        [*BASE, "--trainer.devices=4", "--data.batch_size=16", f"--trainer.default_root_dir={tmp_path}"]
    )
    assert cli.trainer.world_size == 4 and cli.datamodule.batch_size == 16
    assert cli.trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert cli.trainer.strategy._ddp_kwargs.get("static_graph", False) is False


def test_an_explicit_strategy_is_kept(tmp_path: Path) -> None:
    cli = build_cli(
        [
            *BASE,
            "--trainer.devices=2",
            "--trainer.strategy=ddp_spawn",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert cli.config.trainer.strategy == "ddp_spawn"
    single = build_cli([*BASE, f"--trainer.default_root_dir={tmp_path}"])
    assert isinstance(single.trainer.strategy, SingleDeviceStrategy)
