"""``model.compile``: compiled generator and critic, with the penalty's double backward run eagerly."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.helpers import toy_data, toy_model, trainer


def _fit(tmp_path: Path, compile: bool) -> torch.nn.Module:
    pl.seed_everything(0)
    model = toy_model(n_critic=2, hidden=16, max_generator_steps=3, compile=compile)
    trainer(tmp_path / str(compile), max_epochs=10).fit(model, toy_data(4, batch_size=32, seed=1))
    return model


@pytest.mark.heavy
@pytest.mark.slow  # inductor compiles several graphs on the CPU: 20-60 s
def test_compiled_training_matches_eager_and_warns_once_about_the_penalty(tmp_path: Path) -> None:
    eager = _fit(tmp_path, compile=False)
    with pytest.warns(UserWarning, match="critic runs eagerly inside the penalties") as record:
        compiled = _fit(tmp_path, compile=True)
    assert sum("model.compile=true" in str(w.message) for w in record) == 1
    assert (
        compiled.generator._compiled_call_impl is not None and compiled.critic._compiled_call_impl is not None
    )
    assert (compiled.generator_steps, compiled.critic_steps) == (3, 6)
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # checkpoints are interchangeable
    for (name, p), q in zip(compiled.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)


def test_compile_is_off_by_default() -> None:
    model = toy_model()
    assert model.compile_networks is False and model.critic._compiled_call_impl is None
