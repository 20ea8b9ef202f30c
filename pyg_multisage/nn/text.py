r"""The hashed :math:`n`-gram text embedding layer (OmniSage §3.2).

The tokenizer (features are data, shared with :mod:`pyg_multisage.datasets`)
lives in :mod:`pyg_multisage.text`; this module holds the learned layer on
top of it, :class:`HashedTextEmbedding`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pyg_multisage._checks import check_int
from pyg_multisage.text import HashedTokenizer

__all__ = ["HashedTextEmbedding"]


class HashedTextEmbedding(torch.nn.Module):
    r"""Hashed :math:`n`-gram text embedding (OmniSage §3.2, after hash
    embeddings [Svenstrup et al., 2017]) on :class:`torch.nn.EmbeddingBag`.

    .. math::
        \mathbf{e}(x) = \operatorname{agg}_{g \in \mathcal{G}(x)}
        \mathbf{E}_{\,h(g) \bmod B}

    where :math:`\mathcal{G}(x)` are the word and character :math:`n`-grams
    of text :math:`x`, :math:`h` the deterministic FNV-1a hash of
    :class:`~pyg_multisage.text.HashedTokenizer`,
    :math:`\mathbf{E} \in \mathbb{R}^{B \times d}` the learned table and agg
    the mean (or sum / max). Empty texts embed to zeros.

    Args:
        num_buckets (int): number of hash buckets :math:`B`.
        dim (int): embedding size :math:`d`.
        mode (str, optional): ``'mean'``, ``'sum'`` or ``'max'``.
            (default: :obj:`'mean'`)
        word_ngrams (int or (int, int), optional): see
            :class:`~pyg_multisage.text.HashedTokenizer`. (default: :obj:`2`)
        char_ngrams (int or (int, int), optional): see
            :class:`~pyg_multisage.text.HashedTokenizer`. (default: :obj:`(3, 5)`)
        lowercase (bool, optional): lower-case texts first.
            (default: :obj:`True`)
        num_hashes (int, optional): buckets per :math:`n`-gram.
            (default: :obj:`1`)
        **kwargs (optional): further arguments of
            :class:`torch.nn.EmbeddingBag` (e.g. ``sparse=True``).
    """

    def __init__(
        self,
        num_buckets: int,
        dim: int,
        mode: str = "mean",
        word_ngrams: int | tuple[int, int] | None = 2,
        char_ngrams: int | tuple[int, int] | None = (3, 5),
        lowercase: bool = True,
        num_hashes: int = 1,
        **kwargs,
    ) -> None:
        super().__init__()
        if mode not in ("mean", "sum", "max"):
            raise ValueError(f"mode must be 'mean', 'sum' or 'max', got {mode!r}")
        self.tokenizer = HashedTokenizer(
            num_buckets, word_ngrams, char_ngrams, lowercase, num_hashes
        )
        self.num_buckets = self.tokenizer.num_buckets
        self.dim = check_int(dim, "dim", 1)
        self.mode = mode
        self.bag = torch.nn.EmbeddingBag(num_buckets, dim, mode=mode, **kwargs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Resets the table to :math:`\mathcal{N}(0, 1/d)` entries."""
        torch.nn.init.normal_(self.bag.weight, std=self.dim**-0.5)

    def forward(
        self,
        input: Tensor | Sequence[str],
        offsets: Tensor | None = None,
        per_sample_weights: Tensor | None = None,
    ) -> Tensor:
        r"""Embeds texts.

        Args:
            input (torch.Tensor or list[str]): flat bucket ids ``[N]`` (with
                :obj:`offsets`) or ``[T, L]``, or raw texts (tokenized here).
            offsets (torch.Tensor, optional): start of each bag in
                :obj:`input` (``[T]``). (default: :obj:`None`)
            per_sample_weights (torch.Tensor, optional): weights of the ids
                (mode ``'sum'`` only). (default: :obj:`None`)

        Returns:
            torch.Tensor: ``[T, dim]``.
        """
        if not isinstance(input, Tensor):
            if offsets is not None:
                raise ValueError("offsets must be None when input holds texts")
            input, offsets = self.tokenizer(input)
            input = input.to(self.bag.weight.device)
            offsets = offsets.to(self.bag.weight.device)
        if input.is_floating_point() or input.dtype == torch.bool:
            raise TypeError(f"input must hold integer bucket ids, got {input.dtype}")
        if input.numel() and (
            int(input.min()) < 0 or int(input.max()) >= self.num_buckets
        ):
            raise ValueError(f"input holds bucket ids outside [0, {self.num_buckets})")
        if offsets is not None:
            if input.dim() != 1:
                raise ValueError("input must be one-dimensional when offsets is given")
            if offsets.dim() != 1:
                raise ValueError("offsets must be one-dimensional")
            if offsets.numel() and (
                int(offsets[0]) != 0
                or bool((offsets.diff() < 0).any())
                or int(offsets[-1]) > input.numel()
            ):
                raise ValueError(
                    "offsets must start at 0, not decrease and not exceed input.numel()"
                )
        return self.bag(input.long(), offsets, per_sample_weights=per_sample_weights)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_buckets}, {self.dim}, "
            f"mode={self.mode!r}, word_ngrams={self.tokenizer.word_ngrams}, "
            f"char_ngrams={self.tokenizer.char_ngrams})"
        )
