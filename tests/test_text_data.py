"""TextDataModule and Vocabulary on texts the tests write: vocabulary, unknown symbol, padding, shapes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.data import DatasetNotFoundError, TextDataModule, Vocabulary
from src.data.splits import seeded_split
from src.data.vocabulary import PAD, UNKNOWN, UNKNOWN_CHAR


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_vocabulary_ranks_symbols_by_frequency_with_padding_and_an_unknown_symbol() -> None:
    # seq_len 4: a x3, b x2, c x1, padding 1 + 2 + 3 = 6; room for unknown + 3 symbols.
    vocab = Vocabulary.build(["aab", "ab", "c"], seq_len=4, max_vocab=4)
    assert vocab.symbols == [UNKNOWN, PAD, "a", "b"]
    assert vocab.encode("c") == [0, 1, 1, 1]  # c is not in the vocabulary: the unknown symbol, then padding
    assert vocab.encode("ba") == [3, 2, 1, 1]
    assert vocab.decode([3, 2, 0, 1]) == "ba" + UNKNOWN_CHAR  # padding shows as nothing
    with pytest.raises(ValueError, match="seq_len=4"):
        vocab.encode("abcde")


def test_vocabulary_ties_do_not_depend_on_line_order() -> None:
    assert Vocabulary.build(["xy", "yx"], 2, 10) == Vocabulary.build(["yx", "xy"], 2, 10)


def test_batches_are_one_hot_float_and_decode_back_to_the_lines(tmp_path: Path) -> None:
    lines = [f"line {i} of text" for i in range(100)]
    dm = TextDataModule(str(_write(tmp_path / "t.txt", lines)), seq_len=16, batch_size=8, val_fraction=0.2)
    vocab_size = len(set("".join(lines))) + 2  # every character, the padding and the unknown symbol
    assert dm.data_shape == (vocab_size, 16) and dm.num_classes == 0
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (8, vocab_size, 16) and batch.dtype == torch.float32
    assert torch.equal(batch.sum(dim=1), torch.ones(8, 16))  # one symbol per position
    assert set(dm.vocabulary.decode_batch(batch)) <= set(lines)
    val = torch.cat(list(dm.val_dataloader()))
    decoded_val = dm.vocabulary.decode_batch(val)
    assert len(decoded_val) == 20 and set(decoded_val) <= set(lines)
    assert dm.vocabulary.decode_batch(dm.lines("val")) == decoded_val  # indices and one-hot decode alike
    assert not set(decoded_val) & set(dm.vocabulary.decode_batch(dm.lines("train")))  # disjoint splits


def test_long_and_empty_lines_are_dropped_or_cut(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.txt", ["short", "", "a line longer than ten", "tiny"] * 10)
    kept = TextDataModule(str(path), seq_len=10, batch_size=4).read()
    assert set(kept) == {"short", "tiny"} and len(kept) == 20
    cut = TextDataModule(str(path), seq_len=10, batch_size=4, truncate=True).read()
    assert "a line lon" in cut and len(cut) == 30


def test_padding_fills_the_end_of_short_lines(tmp_path: Path) -> None:
    dm = TextDataModule(str(_write(tmp_path / "t.txt", ["ab"] * 20)), seq_len=5, batch_size=4)
    rows = dm.lines("train")
    pad = dm.vocabulary.index[PAD]
    assert rows.shape[1] == 5 and (rows[:, 2:] == pad).all() and (rows[:, :2] != pad).all()


def test_rare_characters_map_to_the_unknown_symbol(tmp_path: Path) -> None:
    dm = TextDataModule(
        str(_write(tmp_path / "t.txt", ["aaaa"] * 30 + ["z"])), seq_len=4, max_vocab=2, batch_size=4
    )
    assert dm.vocabulary.symbols == [UNKNOWN, "a"]  # padding (30 x 0 + 3) is rarer than a (120)
    assert dm.vocabulary.decode(dm.vocabulary.encode("za")) == UNKNOWN_CHAR + "a" + UNKNOWN_CHAR * 2


def test_a_folder_reads_its_txt_files_in_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.txt", ["second"] * 10)
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "a.txt", ["first"] * 10)
    _write(tmp_path / "notes.md", ["ignored"] * 10)
    dm = TextDataModule(str(tmp_path), seq_len=8, batch_size=4)
    assert dm.read() == ["second"] * 10 + ["first"] * 10  # b.txt sorts before sub/a.txt
    assert TextDataModule(str(tmp_path), seq_len=8, batch_size=4, pattern="*.md").read() == ["ignored"] * 10


def test_the_vocabulary_comes_from_the_training_lines_only(tmp_path: Path) -> None:
    lines = [f"line {i % 10}" for i in range(100)] + ["zq!"]  # z, q and ! appear in the last line only
    seed = next(s for s in range(100) if len(lines) - 1 in seeded_split(len(lines), [0.1], s)[1])  # held out
    dm = TextDataModule(str(_write(tmp_path / "t.txt", lines)), seq_len=8, batch_size=8, seed=seed)
    assert "zq!" not in dm.vocabulary.decode_batch(dm.lines("train"))
    assert not {"z", "q", "!"} & set(dm.vocabulary.symbols)  # never seen in training: not in the vocabulary
    assert UNKNOWN_CHAR * 3 in dm.vocabulary.decode_batch(dm.lines("val"))  # held-out text: unknown symbols
    assert set("line 0123456789") <= set(dm.vocabulary.symbols)
    everything = Vocabulary.build(lines, 8, 2048)  # what counting every line (the released code) gives
    assert {"z", "q", "!"} <= set(everything.symbols)


def test_max_val_lines_caps_the_held_out_split(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.txt", [f"{i}" for i in range(200)])
    dm = TextDataModule(str(path), seq_len=4, batch_size=4, val_fraction=0.5, max_val_lines=30)
    assert len(dm.lines("val")) == 30 and len(dm.lines("train")) == 170
    again = TextDataModule(str(path), seq_len=4, batch_size=4, val_fraction=0.5, max_val_lines=30)
    assert torch.equal(dm.lines("val"), again.lines("val"))  # seeded


def test_the_vocabulary_is_saved_in_the_state_dict_and_checked_on_resume(tmp_path: Path) -> None:
    dm = TextDataModule(str(_write(tmp_path / "t.txt", ["hello world"] * 20)), seq_len=12, batch_size=4)
    checkpoint = {"TextDataModule": dm.state_dict(), "state_dict": {}}
    assert Vocabulary.from_checkpoint(checkpoint) == dm.vocabulary
    assert Vocabulary.from_checkpoint({"state_dict": {}}) is None
    dm.load_state_dict(dm.state_dict())  # the same text: fine
    other = TextDataModule(str(_write(tmp_path / "u.txt", ["other text"] * 20)), seq_len=12, batch_size=4)
    with pytest.raises(ValueError, match="vocabulary"):
        other.load_state_dict(dm.state_dict())


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, DatasetNotFoundError, "data.path=.*does not exist"),
        (b"", ValueError, "data.path: no usable line"),
        (b"\n\n\n", ValueError, "data.path: no usable line"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ValueError, "data.path: .* binary"),
        (b"caf\xe9 latin-1\n", ValueError, "data.path: .* not UTF-8"),
        (b"x" * 100 + b"\n", ValueError, "longer than data.seq_len=32"),
    ],
)
def test_bad_input_names_data_path(tmp_path: Path, content: bytes | None, error: type, message: str) -> None:
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        TextDataModule(str(path)).setup("fit")


def test_a_folder_without_text_and_too_few_lines_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetNotFoundError, match="data.path=.*without files matching data.pattern='\\*.txt'"
    ):
        TextDataModule(str(tmp_path))
    path = _write(tmp_path / "t.txt", ["a", "b", "c"])
    with pytest.raises(ValueError, match="fewer than data.batch_size=64"):
        TextDataModule(str(path)).setup("fit")
    with pytest.raises(ValueError, match="data.seq_len must be >= 1"):
        TextDataModule(str(path), seq_len=0)


def test_a_byte_order_mark_and_windows_line_endings_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(("\ufeff" + "one\r\ntwo\r\n" * 4).encode())
    dm = TextDataModule(str(path), seq_len=4, batch_size=2)
    assert dm.read() == ["one", "two"] * 4
