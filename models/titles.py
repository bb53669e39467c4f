"""Track-title language model: a character-level GRU conditioned on genre and album theme.

The model reads a title one character at a time. Every step also sees two conditioning vectors:

* a learned **genre** embedding (``pop, rap, rock, latin, r&b, edm`` or ``any``), and
* a **theme** vector: the mean of learned embeddings of hashed word and character-trigram features of
  the album name (:func:`theme_features`), so the user's album name steers generation at run time.

The initial GRU state is a projection of the conditioning, so the first character already depends on it.
Definition, sampling and scoring live here; training is :mod:`models.train_titles`; ranking, filtering
and ordering are in :mod:`core.album`. This module imports torch: import it lazily.
"""

from __future__ import annotations

import json
import re
import unicodedata
import zlib
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from core.album import normalize_title

FORMAT_VERSION = 1

#: Genres the model knows; index ``len(GENRES)`` is the general ("any") conditioning.
GENRES: tuple[str, ...] = ("pop", "rap", "rock", "latin", "r&b", "edm")
ANY_GENRE = len(GENRES)

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3

_SUFFIX_WORDS = (
    r"feat|ft|featuring|with|remix|remaster|remastered|version|edit|mix|live|from|prod|acoustic|extended"
    r"|original|radio|bonus|demo|instrumental|deluxe|explicit|clean|single|mono|stereo|recorded|session"
    r"|cover|soundtrack|album|bootleg|vip|dub|rework|intro|outro|interlude|skit|reprise|spanish|english"
)
_PAREN_RE = re.compile(r"\s*[\(\[][^\)\]]*\b(?:" + _SUFFIX_WORDS + r")\b[^\)\]]*[\)\]]", re.IGNORECASE)
_FEAT_RE = re.compile(r"\s+(?:feat\.?|ft\.|featuring)\s.*$", re.IGNORECASE)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def clean_title(raw: str) -> str:
    """Strip version/featuring suffixes from a catalogue title.

    Removes ``" - Remastered 2011"``-style suffixes (everything after the first ``" - "``),
    parenthesised or bracketed groups naming a feature, remix, edit, version and the like, and
    trailing ``feat.`` clauses; normalises quotes and whitespace.

    Examples
    --------
    >>> clean_title("Memories - Dillon Francis Remix")
    'Memories'
    >>> clean_title("Sold Out Dates (feat. Lil Baby)")
    'Sold Out Dates'
    >>> clean_title("N.F.L (New Found Love)")
    'N.F.L (New Found Love)'
    """
    t = unicodedata.normalize("NFC", raw).translate(_QUOTES)
    t = t.split(" - ", 1)[0]
    for _ in range(3):
        t2 = _PAREN_RE.sub("", t)
        if t2 == t:
            break
        t = t2
    t = _FEAT_RE.sub("", t)
    return re.sub(r"\s+", " ", t).strip(" -")


def theme_features(text: str, *, buckets: int) -> list[int]:
    """Hashed bag of words and character trigrams of ``text`` (ids in ``[1, buckets)``; 0 is unused).

    Words carry meaning ("night", "love"); trigrams of each padded word let unseen words and
    inflections ("lover", "loving") share features. crc32 keeps the hashing stable across runs.

    Examples
    --------
    >>> theme_features("Night", buckets=4096) == theme_features("night!", buckets=4096)
    True
    """
    words = normalize_title(text).split()
    feats: list[int] = []
    for w in words[:16]:
        feats.append(1 + zlib.crc32(("w:" + w).encode()) % (buckets - 1))
        padded = f"<{w}>"
        for i in range(len(padded) - 2):
            feats.append(1 + zlib.crc32(("t:" + padded[i : i + 3]).encode()) % (buckets - 1))
    return feats


@dataclass
class TitlesConfig:
    """Hyper-parameters and vocabulary of :class:`TitleModel` (stored in the checkpoint)."""

    vocab: str = ""
    theme_buckets: int = 4096
    d_char: int = 48
    d_genre: int = 16
    d_theme: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.15
    max_len: int = 48
    extra: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        """Vocabulary size including PAD, BOS and EOS."""
        return N_SPECIAL + len(self.vocab)


class TitleModel(nn.Module):
    """Conditional character GRU; see the module docstring."""

    def __init__(self, cfg: TitlesConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.char = nn.Embedding(cfg.n_tokens, cfg.d_char, padding_idx=PAD)
        self.genre = nn.Embedding(len(GENRES) + 1, cfg.d_genre)
        self.theme = nn.EmbeddingBag(cfg.theme_buckets, cfg.d_theme, mode="mean")
        d_cond = cfg.d_genre + cfg.d_theme
        self.init = nn.Linear(d_cond, cfg.hidden * cfg.layers)
        self.rnn = nn.GRU(
            cfg.d_char + d_cond,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.n_tokens)

    def condition(self, genre: torch.Tensor, theme_ids: torch.Tensor, theme_offsets: torch.Tensor):
        """Conditioning vector ``(B, d_genre + d_theme)`` and initial state ``(layers, B, hidden)``."""
        cond = torch.cat([self.genre(genre), self.theme(theme_ids, theme_offsets)], dim=-1)
        h0 = torch.tanh(self.init(cond)).view(cond.shape[0], self.cfg.layers, self.cfg.hidden)
        return cond, h0.transpose(0, 1).contiguous()

    def forward(self, tokens, genre, theme_ids, theme_offsets, h=None, cond=None):
        """Logits ``(B, T, n_tokens)`` for next-token prediction and the final GRU state."""
        if cond is None or h is None:
            cond, h0 = self.condition(genre, theme_ids, theme_offsets)
            h = h0 if h is None else h
        x = self.char(tokens)
        x = torch.cat([x, cond[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        out, h = self.rnn(self.drop(x), h)
        return self.head(self.drop(out)), h


def encode_title(text: str, vocab: str) -> list[int] | None:
    """Token ids ``[BOS, c1, ..., cn, EOS]``; ``None`` when a character is outside the vocabulary."""
    index = {ch: i + N_SPECIAL for i, ch in enumerate(vocab)}
    ids = [BOS]
    for ch in text:
        if ch not in index:
            return None
        ids.append(index[ch])
    ids.append(EOS)
    return ids


def batch_theme(texts: list[str], *, buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat ids and offsets for :class:`torch.nn.EmbeddingBag` (an empty text gives a zero vector)."""
    ids: list[int] = []
    offsets: list[int] = []
    for t in texts:
        offsets.append(len(ids))
        ids.extend(theme_features(t, buckets=buckets))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


def genre_index(genre: str | None) -> int:
    """Index of ``genre`` in :data:`GENRES`, or :data:`ANY_GENRE` when unknown or ``None``."""
    g = (genre or "").strip().lower()
    return GENRES.index(g) if g in GENRES else ANY_GENRE


@torch.no_grad()
def sample(
    model: TitleModel,
    *,
    theme: str,
    genre: str | None,
    n: int,
    seed: int,
    temperature: float = 0.9,
    top_p: float = 0.92,
    prefixes: list[str] | None = None,
) -> list[str]:
    """Sample ``n`` titles in one batch with temperature and nucleus (top-p) sampling.

    ``prefixes`` (one per row, ``""`` for none) are forced as the first characters of a title, e.g.
    a word of the album name, and the model writes the rest. Characters outside the vocabulary are
    skipped. Deterministic for a given ``seed`` (its own ``torch.Generator``).
    """
    cfg = model.cfg
    gen = torch.Generator().manual_seed(int(seed))
    g = torch.full((n,), genre_index(genre), dtype=torch.long)
    tids, toffs = batch_theme([theme] * n, buckets=cfg.theme_buckets)
    cond, h = model.condition(g, tids, toffs)
    tok = torch.full((n, 1), BOS, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    out = torch.zeros((n, cfg.max_len), dtype=torch.long)
    index = {ch: i + N_SPECIAL for i, ch in enumerate(cfg.vocab)}
    forced = torch.full((n, cfg.max_len), -1, dtype=torch.long)
    for r, pre in enumerate((prefixes or [])[:n]):
        ids = [index[ch] for ch in pre if ch in index][: cfg.max_len // 2]
        if ids:
            forced[r, : len(ids)] = torch.tensor(ids)
    for step in range(cfg.max_len):
        logits, h = model(tok, g, tids, toffs, h=h, cond=cond)
        logits = logits[:, -1, :] / max(temperature, 1e-3)
        logits[:, PAD] = -1e9
        logits[:, BOS] = -1e9
        probs = torch.softmax(logits, dim=-1)
        sp, si = torch.sort(probs, dim=-1, descending=True)
        keep = (torch.cumsum(sp, dim=-1) - sp) < top_p
        sp = sp * keep
        choice = torch.multinomial(sp / sp.sum(dim=-1, keepdim=True), 1, generator=gen)
        nxt = si.gather(1, choice).squeeze(1)
        nxt = torch.where(forced[:, step] >= 0, forced[:, step], nxt)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        out[:, step] = nxt
        done |= nxt == EOS
        if bool(done.all()):
            break
        tok = nxt[:, None]
    titles = []
    for row in out.tolist():
        chars = []
        complete = False
        for t in row:
            if t == EOS:
                complete = True
                break
            if t >= N_SPECIAL:
                chars.append(cfg.vocab[t - N_SPECIAL])
        titles.append("".join(chars) if complete else "")
    return titles


@torch.no_grad()
def score(model: TitleModel, *, titles: list[str], themes: list[str], genre: str | None) -> list[float]:
    """Mean log-probability per token (nats, EOS included) of each title under its theme and ``genre``.

    Titles with characters outside the vocabulary score ``-inf``.
    """
    cfg = model.cfg
    enc = [encode_title(t, cfg.vocab) for t in titles]
    ok = [e for e in enc if e is not None]
    result = [float("-inf")] * len(titles)
    if not ok:
        return result
    idx = [i for i, e in enumerate(enc) if e is not None]
    width = max(len(e) for e in ok)
    toks = torch.full((len(ok), width), PAD, dtype=torch.long)
    for r, e in enumerate(ok):
        toks[r, : len(e)] = torch.tensor(e)
    g = torch.full((len(ok),), genre_index(genre), dtype=torch.long)
    tids, toffs = batch_theme([themes[i] for i in idx], buckets=cfg.theme_buckets)
    logits, _ = model(toks[:, :-1], g, tids, toffs)
    logp = torch.log_softmax(logits, dim=-1).gather(2, toks[:, 1:, None]).squeeze(2)
    mask = (toks[:, 1:] != PAD).float()
    per = (logp * mask).sum(1) / mask.sum(1)
    for r, i in enumerate(idx):
        result[i] = float(per[r])
    return result


def save_checkpoint(model: TitleModel, path, *, metrics: dict | None = None) -> None:
    """Save ``{"model", "config", "format_version"}`` with float16 weights (the file stays small)."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(
        {
            "model": state,
            "config": asdict(model.cfg),
            "format_version": FORMAT_VERSION,
            "metrics": json.loads(json.dumps(metrics or {})),
        },
        path,
    )


def load_checkpoint(path) -> TitleModel:
    """Load a checkpoint written by :func:`save_checkpoint` (CPU, ``weights_only=True``, eval mode)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"titles checkpoint format {ckpt.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    model = TitleModel(TitlesConfig(**ckpt["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()})
    model.eval()
    return model
