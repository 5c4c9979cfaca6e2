"""A word-level language model as public training scripts write it: an ``nn.Embedding``, a
2-layer ``nn.LSTM`` with dropout between layers, and a linear decoder. The training script
(``train.py``) saves it whole, ``torch.save(model, path)``, so loading it needs this module:
run dynprobe from this directory or pass ``--code-path examples/word_lm``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WordLM(nn.Module):
    def __init__(self, ntoken: int, ninp: int = 32, nhid: int = 32, nlayers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers

    def forward(self, input: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor] | None = None):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden
