"""Token-driven systems: a language model driven by its text, through its own encoder.

``tokens(ids, encoder)`` runs integer ids ``[time, batch]`` through the model's input encoder
(its ``nn.Embedding``, or any function ids → ``[time, batch, M]``) into a
:class:`~dynprobe.drives.SequenceDrive`; Lyapunov exponents along it are conditional on that
text (fading-memory paper §2.1). Without an encoder, ``tokens(ids)`` is an *unbound* drive:
:func:`dynprobe.wrap` binds it to the encoder it finds in front of the model's recurrent core
(``wrap(model, drive=tokens(ids))``), and anything else refuses it with the way out.

:func:`read_vocab` and :func:`text_ids` turn a text file into ids word by word, the way
word-level language-model scripts do (``line.split() + ["<eos>"]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from .drives import Drive, SequenceDrive, sequence
from .errors import DriveError

if TYPE_CHECKING:
    from .system import System

__all__ = ["tokens", "TokenDrive", "TokenSequence", "as_ids", "check_ids", "encode", "read_vocab", "text_ids"]

Encoder = Callable[[Tensor], Tensor]


def _name(encoder: object) -> str:
    if isinstance(encoder, nn.Module):
        return repr(encoder).splitlines()[0].rstrip("(")
    return getattr(encoder, "__qualname__", type(encoder).__name__)


def as_ids(ids: Tensor | np.ndarray | list[int], *, where: str = "tokens") -> Tensor:
    """Token ids as an int64 ``[time, batch]`` tensor (``[time]`` gains a batch of one)."""
    value = torch.as_tensor(ids)
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise DriveError(f"{where}: token ids must be integers, got {str(value.dtype).removeprefix('torch.')}; "
                         "for real-valued inputs use sequence(U) (CLI: a float .npy/.pt file)")
    if value.ndim == 1:
        value = value[:, None]
    if value.ndim != 2 or value.numel() == 0:
        raise DriveError(f"{where}: token ids of shape {list(value.shape)}; expected [time, batch] or [time]")
    if int(value.min()) < 0:
        raise DriveError(f"{where}: token ids must be >= 0, found {int(value.min())}")
    return value.to(torch.int64)


def check_ids(ids: Tensor, encoder: Encoder, *, where: str = "tokens") -> None:
    """Refuse ids beyond an ``nn.Embedding``'s vocabulary (before anything is called with them)."""
    size = getattr(encoder, "num_embeddings", None)
    if isinstance(size, int) and int(ids.max()) >= size:
        raise DriveError(f"{where}: token id {int(ids.max())} is outside the vocabulary of {_name(encoder)} "
                         f"(ids 0..{size - 1}); use the vocabulary the model was trained with")


def encode(ids: Tensor, encoder: Encoder, *, where: str = "tokens") -> Tensor:
    """``encoder(ids)`` in eval mode, without gradients, checked to be ``[time, batch, M]`` floats."""
    check_ids(ids, encoder, where=where)
    module = encoder if isinstance(encoder, nn.Module) else None
    was = module.training if module is not None else False
    if module is not None:
        module.eval()
        first = next((p for p in module.parameters()), None)
        ids = ids.to(first.device) if first is not None else ids
    try:
        with torch.no_grad():
            out = encoder(ids)
    except Exception as err:  # noqa: BLE001 - the user's encoder: one line, chained
        raise DriveError(f"{where}: the encoder {_name(encoder)} failed on ids {list(ids.shape)} "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
    finally:
        if module is not None:
            module.train(was)
    if not isinstance(out, Tensor) or not out.is_floating_point() or out.ndim != 3 or out.shape[:2] != ids.shape:
        got = f"shape {list(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
        raise DriveError(f"{where}: the encoder {_name(encoder)} turned ids {list(ids.shape)} into {got}; expected "
                         f"floats [{ids.shape[0]}, {ids.shape[1]}, M]")
    return out.detach().to("cpu", torch.float64)


class TokenSequence(SequenceDrive):
    """A :class:`SequenceDrive` whose inputs are the encoder's output for token ids.

    Attributes
    ----------
    ids
        The token ids ``[time, batch]``.
    encoder
        A short description of the encoder (its repr's first line).
    """

    kind = "sequence"

    def __init__(self, inputs: Tensor, ids: Tensor, encoder: str, *, cycle: bool = False) -> None:
        super().__init__(inputs, cycle=cycle)
        self.ids = ids
        self.encoder = encoder

    def describe(self) -> str:
        cyc = ", cycled" if self.cycle else ""
        return f"tokens({'x'.join(map(str, self.ids.shape))}, encoder={self.encoder}{cyc})"


class TokenDrive(Drive):
    """Token ids waiting for an encoder (made by :func:`tokens` without one).

    :func:`dynprobe.wrap` binds it to the encoder found before the model's recurrent core;
    :meth:`bind` does it by hand. Until then it fits no System (:meth:`check` says why).
    """

    kind = "tokens"
    time_varying = True

    def __init__(self, ids: Tensor, *, cycle: bool = False) -> None:
        self.ids = ids
        self.cycle = cycle

    def bind(self, encoder: Encoder) -> TokenSequence:
        """The sequence drive ``encoder(ids)``."""
        inputs = encode(self.ids, encoder)
        sequence(inputs)  # finite check
        return TokenSequence(inputs, self.ids, _name(encoder), cycle=self.cycle)

    def _refuse(self, system: System) -> DriveError:
        return DriveError(
            f"drive 'tokens': token ids {list(self.ids.shape)} need an encoder to become the M={system.input_dim} "
            f"inputs of {system.name}; wrap the whole model (wrap(model, drive=tokens(ids)) uses the encoder before "
            "its recurrent core) or pass tokens(ids, encoder=model.encoder) (CLI: --encoder package.module:fn)")

    def check(self, system: System) -> None:
        raise self._refuse(system)

    def external(self, system: System, t: int, lead: tuple[int, ...]) -> Tensor:
        raise self._refuse(system)

    def describe(self) -> str:
        return f"tokens({'x'.join(map(str, self.ids.shape))}, no encoder)"


def tokens(ids: Tensor | np.ndarray | list[int], encoder: Encoder | None = None, *,
           cycle: bool = False) -> TokenSequence | TokenDrive:
    """Drive a system by token ids through an input encoder.

    Parameters
    ----------
    ids
        Integer ids ``[time, batch]`` (one text per sample; a run with more samples than
        columns drives sample i by column i mod batch) or ``[time]``.
    encoder
        The model's own input encoder: an ``nn.Embedding``, any module or function mapping ids
        ``[time, batch]`` to floats ``[time, batch, M]``. ``None``: bound by
        :func:`dynprobe.wrap` to the encoder in front of the model's recurrent core.
    cycle
        Start the text again when a run needs more steps than it has (refused otherwise).

    Returns
    -------
    TokenSequence, or an unbound TokenDrive when no encoder is given.

    References
    ----------
    Fading-memory paper §2.1 (exponents conditional on the input sequence).

    Example
    -------
    >>> system = dynprobe.wrap(lm, dtype=torch.float64, drive=dynprobe.tokens(ids))  # lm.encoder embeds them
    """
    value = as_ids(ids)
    drive = TokenDrive(value, cycle=cycle)
    return drive if encoder is None else drive.bind(encoder)


def read_vocab(path: str | Path) -> dict[str, int]:
    """A vocabulary file as ``{token: id}``: JSON (a ``{token: id}`` object or a list of tokens)
    or text with one token per line (its first field; the line number is the id, as in
    ``dict.txt`` / ``vocab.txt`` files)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DriveError(f"--vocab {path}: unreadable ({err}); pass a text file, one token per line, or JSON") from err
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise DriveError(f"--vocab {path}: not JSON ({err})") from err
        if isinstance(data, list) and all(isinstance(t, str) for t in data):
            return {t: i for i, t in enumerate(data)}
        if isinstance(data, Mapping) and all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
            return {str(k): int(v) for k, v in data.items()}
        raise DriveError(f"--vocab {path}: expected a JSON object {{token: id}} or a list of tokens")
    vocab: dict[str, int] = {}
    for line in text.splitlines():
        word = line.split()[0] if line.split() else None
        if word is not None and word not in vocab:
            vocab[word] = len(vocab)
    if not vocab:
        raise DriveError(f"--vocab {path}: holds no tokens; one token per line")
    return vocab


def text_ids(path: str | Path, vocab: Mapping[str, int]) -> Tensor:
    """The words of a text file as ids ``[time, 1]``: ``line.split()``, plus ``<eos>`` after
    each line when the vocabulary has it; unknown words become ``<unk>`` when it has that."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DriveError(f"--input {path}: unreadable as text ({err})") from err
    eos, unk = vocab.get("<eos>"), vocab.get("<unk>")
    ids, unknown = [], []
    for line in text.splitlines():
        for word in line.split():
            if word in vocab:
                ids.append(vocab[word])
            elif unk is not None:
                ids.append(unk)
            else:
                unknown.append(word)
        if eos is not None and line.split():
            ids.append(eos)
    if unknown:
        shown = ", ".join(repr(w) for w in list(dict.fromkeys(unknown))[:5])
        raise DriveError(f"--input {path}: {len(unknown)} words are not in the vocabulary ({shown}) and it has no "
                         "<unk>; use the vocabulary the model was trained with")
    if not ids:
        raise DriveError(f"--input {path}: holds no words")
    return torch.tensor(ids, dtype=torch.int64)[:, None]
