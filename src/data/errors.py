"""The error for an absent dataset, and its message: which dataset, where we looked, why, how to get it."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is absent and could not be obtained; the message names it, where we looked and the fix."""


def require_download(
    name: str, where: Path | str, how: str, error: BaseException | None = None, download: bool = True
) -> DatasetNotFoundError:
    """The error for an absent dataset: which one, where we looked, why it was not downloaded, how to get it.

    Args:
        name: The dataset.
        where: The folder that was searched.
        how: Instructions to obtain the files.
        error: The download's exception, if a download was tried.
        download: Whether downloading was on (``data.download``).

    Returns:
        The error, for the caller to raise.
    """
    if error is not None:
        text = str(error).strip()
        reason = f" and the download failed ({type(error).__name__}: {text.splitlines()[0] if text else ''})"
    elif not download:
        reason = " and downloading is off (--data.download=false)"
    else:
        reason = ""
    return DatasetNotFoundError(f"{name} was not found in {where}{reason}. {how}")
