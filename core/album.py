"""Album factory: track titles and a cover from an album name and artist.

Titles come from a character-level language model trained by us on song titles (:mod:`models.titles`),
followed by filtering, novelty checking, relevance/variety ranking and ordering. Covers are procedural.
"""

from __future__ import annotations

import colorsys
import gzip
import hashlib
import io
import itertools
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def normalize_title(text: str) -> str:
    """Normal form used for the novelty check: case-folded, accents removed, only letters/digits.

    Examples
    --------
    >>> normalize_title("  Oops!... I Did It Again ")
    'oops i did it again'
    >>> normalize_title("Canción")
    'cancion'
    """
    t = unicodedata.normalize("NFKD", text.translate(_QUOTES).casefold())
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = t.replace("'", "").replace("&", " and ")
    t = re.sub(r"[^\w]+", " ", t, flags=re.UNICODE).replace("_", " ")
    return re.sub(r"\s+", " ", t).strip()


def title_hashes(names) -> np.ndarray:
    """Sorted unique 64-bit BLAKE2b hashes of the normalised ``names`` (empty names skipped)."""
    keys = {normalize_title(n) for n in names}
    keys.discard("")
    vals = [int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little") for k in keys]
    return np.unique(np.array(vals, dtype=np.uint64))


# ---------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------

#: Genres the title model and the cover palettes know.
GENRES: tuple[str, ...] = ("pop", "rap", "rock", "latin", "r&b", "edm")
#: Moods the cover palettes and the title ranking know.
MOODS: tuple[str, ...] = ("happy", "sad", "dark", "chill", "energetic", "romantic", "dreamy", "angry")
#: Cover styles; ``"auto"`` picks one from the seed, genre and mood.
STYLES: tuple[str, ...] = ("gradient", "bauhaus", "flow", "halftone", "bokeh", "minimal")
MAX_NAME_CHARS = 80
MIN_TITLES, MAX_TITLES = 8, 16

_TAG_RE = re.compile(r"</?[A-Za-z!][^<>]{0,500}>")
_GENRE_ALIASES = {
    "rnb": "r&b",
    "r and b": "r&b",
    "randb": "r&b",
    "hip hop": "rap",
    "hip-hop": "rap",
    "hiphop": "rap",
    "electronic": "edm",
    "dance": "edm",
    "reggaeton": "latin",
}


def clean_text(
    text: str | None, *, field: str = "album name", max_chars: int = MAX_NAME_CHARS, required: bool = True
) -> str:
    """Make user text safe to use: strip markup tags, control/format characters and extra spaces.

    The result is at most ``max_chars`` characters (cut at a word boundary when one is near).
    Text is only ever drawn as pixels or shown as plain text, so nothing else needs escaping.

    Raises
    ------
    InputError
        When ``required`` and nothing visible is left.

    Examples
    --------
    >>> clean_text("  <b>Night\\x00 Drive</b> ")
    'Night Drive'
    """
    from core.errors import InputError

    t = unicodedata.normalize("NFC", str(text or ""))
    t = _TAG_RE.sub(" ", t)
    t = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in t)
    t = "".join(ch for ch in t if unicodedata.category(ch) not in ("Cf", "Co", "Cs", "Cn") or ch == "\u200d")
    t = re.sub(
        r"([\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{2})[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+",
        r"\1",
        t,
    )  # "zalgo" stacks
    t = re.sub(r"\s+", " ", t).strip()
    if len(t) > max_chars:
        cut = t[:max_chars]
        space = cut.rfind(" ")
        t = (cut[:space] if space >= max_chars * 0.6 else cut).strip()
    if required and not t:
        raise InputError(
            f"The {field} is empty after removing markup and control characters ({text!r:.60}); "
            f"type 1-{max_chars} visible characters."
        )
    return t


def resolve_genre(genre: str | None) -> tuple[str | None, str | None]:
    """Map a user genre to one of :data:`GENRES`; unknown genres fall back to ``None`` with a note.

    Examples
    --------
    >>> resolve_genre("Hip-Hop")
    ('rap', None)
    >>> resolve_genre("polka")[0] is None
    True
    """
    g = re.sub(r"\s+", " ", (genre or "").strip().lower())
    if not g or g in ("any", "auto", "none"):
        return None, None
    g = _GENRE_ALIASES.get(g, g)
    if g in GENRES:
        return g, None
    return None, (
        f"Unknown genre {clean_text(genre, required=False, max_chars=30)!r}: "
        f"using a general style (known: {', '.join(GENRES)})."
    )


def resolve_mood(mood: str | None) -> tuple[str | None, str | None]:
    """Map a user mood to one of :data:`MOODS`; unknown moods fall back to ``None`` with a note."""
    m = (mood or "").strip().lower()
    if not m or m in ("any", "auto", "none"):
        return None, None
    if m in MOODS:
        return m, None
    return None, (
        f"Unknown mood {clean_text(mood, required=False, max_chars=30)!r}: "
        f"using a neutral mood (known: {', '.join(MOODS)})."
    )


# ---------------------------------------------------------------------------------------------------
# titles: shipped data, relevance, filters
# ---------------------------------------------------------------------------------------------------

DATA_DIR = Path(__file__).resolve().parent / "album_data"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "titles.pt"


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = _wordset(
    "a an the of to in on at for and or but my your our his her their its me you we i it is be "
    "are was with from by so no not this that these those el la los las de del y en mi tu un una"
)
_DANGLING = _wordset("a an the of to in on at for and or but my your our with from by de del y en la el")
# A basic block list (whole normalised words); the data set's explicit rap titles are the main source.
_PROFANITY = _wordset(
    "fuck fucking fucked fucker fuckin motherfucker shit shitty bitch bitches bitchy cunt dick "
    "dicks cock pussy nigga niggas nigger whore hoe hoes slut fag faggot asshole bastard twat "
    "wank puta puto mierda cabron pendejo verga chingar culo perra porn pornstar cum rape"
)
_CLOSING_WORDS = _wordset(
    "goodbye bye end ending last home outro farewell forever finale sunrise dawn after gone leave "
    "leaving tomorrow rest sleep night lullaby away"
)
_MOOD_WORDS = {
    "happy": "sun sunshine happy smile gold summer dance light good shine",
    "sad": "tears cry blue alone rain lonely broken gone cold lost",
    "dark": "dark night shadow black smoke ghost devil blood fire storm",
    "chill": "slow easy wave ocean breeze float drift calm sunday lazy",
    "energetic": "run fire wild jump loud fast power rush alive go",
    "romantic": "love heart kiss baby darling you forever honey mine dream",
    "dreamy": "dream sky stars moon cloud heaven space glow angel float",
    "angry": "fight rage war burn break enemy blood riot scream down",
}


@dataclass(frozen=True)
class TitleAssets:
    """Shipped data the title filters need: hashed known titles and the word list."""

    known: np.ndarray
    words: frozenset[str]
    bigrams: np.ndarray
    rare_words: frozenset[str] = frozenset()


def load_title_assets(data_dir: Path | None = None) -> TitleAssets:
    """Load the hashed training-title set and the word list from ``core/album_data``."""
    from core.errors import ModelError

    d = Path(data_dir) if data_dir is not None else DATA_DIR
    try:
        known = np.load(d / "known_titles.npy")
        lines = gzip.decompress((d / "title_words.txt.gz").read_bytes()).decode().splitlines()
        counts = {w: int(c) for w, c in (ln.split("\t") for ln in lines if ln)}
        bigrams = np.load(d / "title_bigrams.npy")
    except (OSError, ValueError) as exc:
        raise ModelError(f"Album title data is missing or corrupt in {d}: {exc}") from exc
    return TitleAssets(
        known=known,
        words=frozenset(w for w, c in counts.items() if c >= 2),
        bigrams=bigrams,
        rare_words=frozenset(w for w, c in counts.items() if c < 2),
    )


def is_known_title(title: str, known: np.ndarray) -> bool:
    """Whether ``title`` (normalised) is in the hashed set of training titles and album names."""
    h = title_hashes([title])
    if h.size == 0:
        return False
    i = int(np.searchsorted(known, h[0]))
    return i < known.size and known[i] == h[0]


def _pair_stats(title: str, bigrams: np.ndarray) -> tuple[float, bool]:
    """Share of adjacent word pairs seen in the training titles, and whether an unseen pair is made
    of two function words (an ungrammatical run like "The Me")."""
    toks = normalize_title(title).split()
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(toks)]
    if not pairs:
        return 1.0, False
    h = title_hashes(pairs)  # unique pairs only
    idx = np.minimum(np.searchsorted(bigrams, h), bigrams.size - 1)
    seen = {int(x) for x in h[bigrams[idx] == h]}
    seen_pairs = [
        int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "little") in seen for p in pairs
    ]
    bad = any(
        not ok and a in _STOP and b in _STOP
        for ok, (a, b) in zip(seen_pairs, itertools.pairwise(toks), strict=True)
    )
    return sum(seen_pairs) / len(pairs), bad


def _stem(word: str) -> str:
    for suf in ("ing", "ers", "er", "ed", "es", "s", "in"):
        if len(word) > len(suf) + 3 and word.endswith(suf):
            return word[: -len(suf)]
    return word


def _content_stems(text: str) -> set[str]:
    return {_stem(w) for w in normalize_title(text).split() if w not in _STOP}


def _trigrams(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for w in normalize_title(text).split():
        p = f" {w} "
        for i in range(len(p) - 2):
            out[p[i : i + 3]] = out.get(p[i : i + 3], 0) + 1
    return out


def _cosine(a: dict[str, int], b: dict[str, int]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    return dot / float(np.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values())))


def title_similarity(a: str, b: str) -> float:
    """Character-trigram cosine similarity of two titles in ``[0, 1]`` (used for variety and novelty).

    Examples
    --------
    >>> title_similarity("Midnight Rain", "midnight rain!")
    1.0
    """
    return round(_cosine(_trigrams(a), _trigrams(b)), 6)


def relevance(title: str, *, album: str, mood: str | None = None) -> float:
    """Relevance of a track title to an album in ``[0, 1]``.

    Mean of (a) the share of the title's content-word stems that appear in the album name (plus the
    mood's theme words, weighted half) and (b) the character-trigram cosine between title and album
    name, which rewards shared word parts ("Neon" / "Neonlight").

    Examples
    --------
    >>> relevance("Neon Heart", album="Neon Skyline") > relevance("Cold Water", album="Neon Skyline")
    True
    """
    t = _content_stems(title)
    a = _content_stems(album)
    word = 0.0
    if t:
        word = len(t & a) / len(t)
        if mood in _MOOD_WORDS:
            m = {_stem(w) for w in _MOOD_WORDS[mood].split()} - a
            word = min(1.0, word + 0.5 * len(t & m) / len(t))
    return 0.5 * word + 0.5 * _cosine(_trigrams(title), _trigrams(album))


def _tidy(title: str) -> str:
    t = re.sub(r"\s+", " ", title).strip(" -,.&")
    if t and t.islower():
        t = " ".join(w[:1].upper() + w[1:] for w in t.split(" "))
    return t


def _well_formed(title: str, words: frozenset[str] | set[str]) -> bool:
    if not (2 <= len(title) <= 40) or title.count("(") != title.count(")") or title.count('"') % 2:
        return False
    toks = normalize_title(title).split()
    if not (1 <= len(toks) <= 7) or toks[-1] in _DANGLING:
        return False
    if any(t in _PROFANITY for t in toks):
        return False
    if re.search(r"(.)\1\1", title.lower()):
        return False
    if any(len(t) == 1 and t not in "aiouyx" for t in toks):
        return False
    if any(a == b for a, b in itertools.pairwise(toks)):  # "Love Love"
        return False
    return all(t.isdigit() or t in words for t in toks)


def _latin_theme(text: str) -> str:
    """The Latin-script words of ``text`` (what the title model was trained on), else ``""``."""
    words = []
    for w in text.split():
        letters = [ch for ch in w if ch.isalpha()]
        if letters and all(ch.isascii() or "LATIN" in unicodedata.name(ch, "") for ch in letters):
            words.append(w)
    return " ".join(words)


# ---------------------------------------------------------------------------------------------------
# titles: generation
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TitleSet:
    """A track list with the notes worth showing the user (fallbacks taken)."""

    titles: list[str]
    notes: list[str]
    title_track_index: int


def load_title_model(path: Path | str | None = None):
    """Load the title language model (imports torch). Pages cache this in ``components.resources``."""
    from core.errors import ModelError

    p = Path(path) if path is not None else DEFAULT_CHECKPOINT
    if not p.is_file():
        raise ModelError(
            f"Title model checkpoint not found at {p}; train it with python -m models.train_titles."
        )
    from models.titles import load_checkpoint

    try:
        return load_checkpoint(p)
    except Exception as exc:  # a corrupt or incompatible file: report it as a model error
        raise ModelError(f"Title model checkpoint {p} could not be loaded: {exc}") from exc


def _title_track(album: str, assets: TitleAssets, taken: set[str]) -> str:
    base = album
    if len(base) > 40:
        words = base.split()
        base = " ".join(words[:5]) if len(words) > 1 else base[:40]
    variants = [base, f"{base} (Title Track)", f"{base}, Pt. II", f"Theme from {base}", f"{base} (Reprise)"]
    for v in variants:
        key = normalize_title(v)
        if (not key or not is_known_title(v, assets.known)) and key not in taken:
            return v
    return f"{base} ({len(taken) + 1})"


def _mmr(
    cands: list[str], quality: np.ndarray, chosen: list[str], k: int, *, album: str, lam: float = 0.35
) -> list[str]:
    """Maximal marginal relevance: best quality minus similarity to what is already picked.

    At most a third of the picks may reuse a word of the album name, so the list echoes the album
    without every title repeating it.
    """
    album_stems = _content_stems(album)
    echo = [bool(_content_stems(c) & album_stems) for c in cands]
    n_echo = sum(bool(_content_stems(c) & album_stems) for c in chosen)
    cap = max(2, (k + len(chosen)) // 3)
    out: list[str] = []
    pool = list(range(len(cands)))
    grams = [_trigrams(c) for c in cands]
    sel_grams = [_trigrams(c) for c in chosen]
    firsts = {normalize_title(c).split()[0] for c in chosen if normalize_title(c)}
    while pool and len(out) < k:
        best, best_val = None, -np.inf
        for i in pool:
            sim = max((_cosine(grams[i], g) for g in sel_grams), default=0.0)
            first = normalize_title(cands[i]).split()[0]
            val = quality[i] - lam * 3.0 * sim - (0.3 if first in firsts and first in _STOP else 0.0)
            if echo[i] and n_echo >= cap:
                val -= 10.0
            if val > best_val:
                best, best_val = i, val
        pool.remove(best)
        n_echo += echo[best]
        out.append(cands[best])
        sel_grams.append(grams[best])
        firsts.add(normalize_title(cands[best]).split()[0])
    return out


def generate_title_set(
    *,
    album: str,
    artist: str = "",
    genre: str | None = None,
    mood: str | None = None,
    n: int = 12,
    seed: int = 0,
    locked: dict[int, str] | None = None,
    model=None,
    assets: TitleAssets | None = None,
) -> TitleSet:
    """Generate an ordered track list for an album, with notes; see :func:`generate_titles`."""
    from core.errors import InputError, ModelError
    from models.titles import sample, score

    name = clean_text(album, field="album name")
    clean_text(artist, field="artist", required=False)
    if not isinstance(n, int) or not (MIN_TITLES <= n <= MAX_TITLES):
        raise InputError(f"Number of titles must be an integer from {MIN_TITLES} to {MAX_TITLES}, got {n!r}.")
    g, g_note = resolve_genre(genre)
    m, m_note = resolve_mood(mood)
    notes = [x for x in (g_note, m_note) if x]
    fixed: dict[int, str] = {}
    for pos, text in (locked or {}).items():
        if not isinstance(pos, int) or not (0 <= pos < n):
            raise InputError(f"Locked title position {pos!r} is outside the track list (0-{n - 1}).")
        t = clean_text(text, field=f"locked title {pos + 1}", max_chars=MAX_NAME_CHARS)
        fixed[pos] = t
    if model is None:
        model = load_title_model()
    if assets is None:
        assets = load_title_assets()

    theme = _latin_theme(name)
    if not theme:
        notes.append("The album name has no Latin-script words; titles use general conditioning.")
    taken = {normalize_title(t) for t in fixed.values()}
    album_key = normalize_title(name)
    has_title_track = album_key in taken or any(album_key and album_key in k for k in taken)
    n_free = n - len(fixed)
    title_track = None
    if not has_title_track and n_free > 0:
        title_track = _title_track(name, assets, taken)
        taken.add(normalize_title(title_track))
        n_free -= 1
    if n_free == 0:  # everything is locked (plus perhaps the title track): nothing to generate
        slots = dict(fixed)
        free = [i for i in range(n) if i not in slots]
        if title_track is not None:
            slots[free[0]] = title_track
        titles = [slots[i] for i in range(n)]
        tt = next((i for i, t in enumerate(titles) if album_key and album_key in normalize_title(t)), -1)
        return TitleSet(titles=titles, notes=notes, title_track_index=tt)

    # A quarter of the samples start with a word of the album name (or of the mood's theme words) and
    # the model writes the rest: prefix prompting, the strongest relevance lever a small model has.
    prng = np.random.default_rng([int(seed) % (2**63), 17])
    hooks = [
        w for w in theme.split() if 2 <= len(normalize_title(w)) <= 14 and normalize_title(w) not in _STOP
    ]
    mood_hooks = [w.capitalize() for w in _MOOD_WORDS.get(m or "", "").split()]
    prefixes = []
    for i in range(96):
        if hooks and i % 4 == 0:
            w = str(hooks[int(prng.integers(0, len(hooks)))])
            prefixes.append((w[:1].upper() + w[1:]) + " ")
        elif mood_hooks and i % 6 == 1:
            prefixes.append(str(mood_hooks[int(prng.integers(0, len(mood_hooks)))]) + " ")
        else:
            prefixes.append("")
    user_words = set(normalize_title(theme).split())  # the user's own words are fine too
    vocab = assets.words | user_words
    vocab_all = vocab | assets.rare_words
    cands: list[str] = []
    backup: list[str] = []  # titles that pass only the relaxed filters (rare words, unusual pairs)
    coverage: dict[str, float] = {}
    seen = set(taken)
    for rnd in range(8):
        if rnd >= 5 and len(cands) + len(backup) >= 2 * n_free:
            break
        general = rnd >= 5  # last resort for odd names: general conditioning, no prompts
        batch = sample(
            model,
            theme="" if general else theme,
            genre=g,
            n=96,
            seed=seed * 7919 + rnd,
            temperature=0.75 + 0.1 * (rnd % 5),
            prefixes=None if general else prefixes,
        )
        for raw in batch:
            t = _tidy(raw)
            key = normalize_title(t)
            if not key or key in seen or key == album_key or not _well_formed(t, vocab_all):
                continue
            if is_known_title(t, assets.known):
                continue
            cov, bad = _pair_stats(t, assets.bigrams)
            if bad:
                continue
            coverage[t] = cov
            seen.add(key)
            strict = _well_formed(t, vocab) and (len(key.split()) < 3 or cov >= 0.5)
            (cands if strict else backup).append(t)
        if len(cands) >= max(24, 3 * n_free):
            break
        if rnd == 4 and len(cands) + len(backup) >= 2 * n_free:
            break
    if len(cands) < 2 * n_free:
        cands = cands + backup
    if len(cands) < n_free:
        raise ModelError(f"The title model produced only {len(cands)} usable titles; {n_free} were needed.")

    lp_theme = np.array(score(model, titles=cands, themes=[theme] * len(cands), genre=g))
    lp_plain = np.array(score(model, titles=cands, themes=[""] * len(cands), genre=g))
    rel = np.array([relevance(c, album=name, mood=m) for c in cands])

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-6)

    cov = np.array([coverage[c] for c in cands])
    n_words = np.array([len(c.split()) for c in cands])
    quality = (
        0.6 * z(lp_theme)
        + 0.3 * z(lp_theme - lp_plain)
        + 2.0 * rel
        + 1.0 * cov
        - 0.35 * np.maximum(0, n_words - 4)
    )
    chosen = _mmr(
        cands, quality, [*fixed.values(), *([title_track] if title_track else [])], n_free, album=name
    )
    q_of = dict(zip(cands, quality, strict=True))

    # Order: opener (a short, strong title), title track early-middle, closer (a "closing" word or the
    # longest remaining title), the rest by quality in between.
    rest = list(chosen)
    opener = closer = None
    if rest:
        opener = max(rest, key=lambda c: q_of[c] - 0.4 * max(0, len(c.split()) - 3))
        rest.remove(opener)
    if rest:
        closer = max(rest, key=lambda c: (bool(set(normalize_title(c).split()) & _CLOSING_WORDS), len(c)))
        rest.remove(closer)
    free_pos = [i for i in range(n) if i not in fixed]
    tt_pos = None
    if title_track is not None:
        target = max(1, round((n - 1) * 0.35))
        tt_pos = min(free_pos, key=lambda i: (abs(i - target), i))
        free_pos.remove(tt_pos)
    # spread the titles that echo the album name through the list instead of bunching them up
    album_stems = _content_stems(name)
    echo = [c for c in rest if _content_stems(c) & album_stems]
    plain = [c for c in rest if c not in echo]
    if echo:
        step = (len(rest) + 1) / (len(echo) + 1)
        marks = {round(step * (j + 1)) - 1 for j in range(len(echo))}
        e_it, p_it = iter(echo), iter(plain)
        rest = [next(e_it) if i in marks else next(p_it, None) or next(e_it) for i in range(len(rest))]
    order = ([opener] if opener else []) + rest + ([closer] if closer else [])
    slots: dict[int, str] = dict(fixed)
    if tt_pos is not None:
        slots[tt_pos] = title_track
    if free_pos and order:
        if opener and free_pos[0] == 0:
            slots[free_pos.pop(0)] = order.pop(0)
        if closer and free_pos and free_pos[-1] == n - 1 and order:
            slots[free_pos.pop()] = order.pop()
        for pos, t in zip(free_pos, order, strict=False):
            slots[pos] = t
    titles = [slots[i] for i in range(n)]
    tt_index = (
        tt_pos
        if tt_pos is not None
        else next((i for i, t in enumerate(titles) if album_key and album_key in normalize_title(t)), -1)
    )
    return TitleSet(titles=titles, notes=notes, title_track_index=tt_index)


def generate_titles(
    *,
    album: str,
    artist: str = "",
    genre: str | None = None,
    mood: str | None = None,
    n: int = 12,
    seed: int = 0,
    locked: dict[int, str] | None = None,
    model=None,
    assets: TitleAssets | None = None,
) -> list[str]:
    """Generate an ordered list of ``n`` new track titles for an album.

    The title model samples a few hundred candidates conditioned on ``genre`` and the album name
    (temperature + nucleus sampling, seeded); candidates are tidied and filtered (2-40 characters,
    1-7 real words, balanced brackets, a basic profanity block list, not ending on "the"/"of"/..., and
    never a title or album name that exists in the training data, checked against the shipped hashed
    set); the rest are ranked by model likelihood, by how much the album name raises that likelihood
    (pointwise mutual information) and by :func:`relevance`, then picked for variety with maximal
    marginal relevance. The order has an opener, the title track (the album name, or a variant when
    the name itself is a known title) early in the middle and a closer.

    Parameters
    ----------
    album, artist : str
        User text; cleaned with :func:`clean_text` (the album name must not be empty).
    genre, mood : str, optional
        One of :data:`GENRES` / :data:`MOODS`; unknown values fall back to general conditioning
        (:func:`generate_title_set` returns the note).
    n : int
        Number of titles, 8-16.
    seed : int
        Same seed, same list.
    locked : dict[int, str], optional
        Titles to keep at their 0-based positions (the lock checkboxes of the page).
    model, assets : optional
        A loaded title model and :class:`TitleAssets` (cached by the caller); loaded when omitted.

    Returns
    -------
    list[str]

    Raises
    ------
    InputError
        Empty album name, ``n`` outside 8-16, a locked position outside the list.
    ModelError
        The checkpoint is missing or unusable.
    """
    return generate_title_set(
        album=album,
        artist=artist,
        genre=genre,
        mood=mood,
        n=n,
        seed=seed,
        locked=locked,
        model=model,
        assets=assets,
    ).titles


# ---------------------------------------------------------------------------------------------------
# covers
# ---------------------------------------------------------------------------------------------------

MIN_COVER, MAX_COVER = 1024, 2048
MIN_CONTRAST = 4.5
_SRGB_LUT = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
)
_FONT_SANS = "DejaVuSans-Bold.ttf"
_FONT_SERIF = "DejaVuSerif-Bold.ttf"

# Hue centres (degrees) per genre and (saturation, lightness) per mood.
_GENRE_HUES = {
    "pop": (320, 190, 45, 280),
    "rap": (45, 0, 270, 30),
    "rock": (0, 20, 210, 40),
    "latin": (25, 50, 170, 345),
    "r&b": (280, 330, 220, 20),
    "edm": (180, 280, 100, 300),
}
_MOOD_SL = {
    "happy": (0.85, 0.6),
    "sad": (0.35, 0.45),
    "dark": (0.6, 0.22),
    "chill": (0.45, 0.7),
    "energetic": (0.95, 0.55),
    "romantic": (0.65, 0.6),
    "dreamy": (0.5, 0.75),
    "angry": (0.9, 0.4),
}
_MOOD_HUE_SHIFT = {"sad": 200, "romantic": 335, "angry": 5, "dreamy": 260}
_STYLE_BY_GENRE = {
    "pop": ("gradient", "bokeh", "minimal", "halftone"),
    "rap": ("minimal", "halftone", "bauhaus", "bokeh"),
    "rock": ("halftone", "bauhaus", "flow", "minimal"),
    "latin": ("bauhaus", "gradient", "halftone", "flow"),
    "r&b": ("bokeh", "gradient", "minimal", "flow"),
    "edm": ("flow", "gradient", "bokeh", "bauhaus"),
}


@dataclass(frozen=True)
class CoverResult:
    """A rendered cover: PNG bytes, the style used and the measured text contrast.

    ``contrast_ratio`` is the WCAG ratio between the text colour and the worst background pixel
    behind the text, measured on the final image; ``text_boxes`` are the panels ``(x0, y0, x1, y1)``
    that hold the title and artist; ``text_color`` is their RGB colour; ``drawn_text`` what was drawn.
    """

    png: bytes
    style: str
    contrast_ratio: float
    text_color: tuple[int, int, int]
    text_boxes: tuple[tuple[int, int, int, int], ...]
    drawn_text: tuple[str, ...]
    notes: tuple[str, ...]
    size: int


def relative_luminance(rgb) -> np.ndarray:
    """WCAG 2 relative luminance of sRGB values in 0-255 (any shape ending in 3).

    Examples
    --------
    >>> float(relative_luminance(np.array([255, 255, 255])))
    1.0
    """
    arr = np.asarray(rgb)
    if arr.dtype == np.uint8:
        lin = _SRGB_LUT[arr]
    else:
        c = np.clip(arr.astype(np.float64), 0, 255) / 255.0
        lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(l1, l2):
    """WCAG contrast ratio of two relative luminances (order does not matter)."""
    hi, lo = np.maximum(l1, l2), np.minimum(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def _hls(h: float, l: float, s: float) -> np.ndarray:  # noqa: E741 - the colour-space name
    r, g, b = colorsys.hls_to_rgb((h % 360) / 360.0, min(max(l, 0.0), 1.0), min(max(s, 0.0), 1.0))
    return np.array([r, g, b])


def _palette(rng: np.random.Generator, genre: str | None, mood: str | None) -> np.ndarray:
    """Five colours (rows, floats 0-1): a base hue from the genre, a harmony, mood saturation/lightness."""
    hues = _GENRE_HUES.get(genre or "", tuple(rng.uniform(0, 360, 4)))
    base = float(rng.choice(hues)) + rng.uniform(-18, 18)
    if mood in _MOOD_HUE_SHIFT and rng.random() < 0.5:
        base = _MOOD_HUE_SHIFT[mood] + rng.uniform(-15, 15)
    s, l = _MOOD_SL.get(mood or "", (rng.uniform(0.55, 0.9), rng.uniform(0.4, 0.62)))  # noqa: E741
    harmony = rng.choice(
        [(0, 30, -30, 180, 15), (0, 120, 240, 20, 140), (0, 180, 160, 200, 10), (0, 25, 50, 75, 100)]
    )
    cols = []
    for i, dh in enumerate(harmony):
        li = l + rng.uniform(-0.18, 0.18) + (0.0 if i else 0.05)
        cols.append(_hls(base + dh, li, s * rng.uniform(0.8, 1.1)))
    return np.array(cols)


def _smooth_field(rng: np.random.Generator, n: int, k: int = 6, grid: int = 96) -> np.ndarray:
    """``(grid, grid, n)`` smooth random weights (normalised Gaussian bumps), for meshes and halftones."""
    yy, xx = np.mgrid[0:grid, 0:grid] / (grid - 1)
    pts = rng.uniform(-0.1, 1.1, (k, 2))
    widths = rng.uniform(0.15, 0.45, k)
    w = np.exp(-(((xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2) / (2 * widths**2)))
    w = w / (w.sum(-1, keepdims=True) + 1e-9)
    assign = rng.integers(0, n, k)
    out = np.zeros((grid, grid, n))
    for j in range(k):
        out[..., assign[j]] += w[..., j]
    return out


def _upsample(arr: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(np.clip(arr * 255, 0, 255).astype(np.uint8))
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _style_gradient(rng, pal, size):
    w = _smooth_field(rng, len(pal), k=7)
    img = _upsample(w @ pal, size)
    # a soft diagonal light sweep
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ang = rng.uniform(0, 2 * np.pi)
    sweep = 0.5 + 0.5 * np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * rng.uniform(2, 5) + rng.uniform(0, 6))
    return np.clip(img * (0.85 + 0.25 * sweep[..., None]), 0, 1)


def _style_bauhaus(rng, pal, size):
    bg = tuple(int(v) for v in (_hls(rng.uniform(30, 50), 0.9, 0.3) * 255)) if rng.random() < 0.6 else None
    img = Image.new("RGB", (size, size), bg or tuple(int(v * 255) for v in pal[0]))
    d = ImageDraw.Draw(img)
    cells = int(rng.integers(3, 5))
    step = size / cells
    cols = [tuple(int(v * 255) for v in c) for c in pal] + [(20, 20, 24)]
    for gy in range(cells):
        for gx in range(cells):
            if rng.random() < 0.25:
                continue
            x0, y0 = gx * step, gy * step
            box = (x0, y0, x0 + step, y0 + step)
            col = cols[int(rng.integers(0, len(cols)))]
            kind = int(rng.integers(0, 5))
            if kind == 0:
                d.ellipse(box, fill=col)
            elif kind == 1:
                start = float(rng.choice([0, 90, 180, 270]))
                d.pieslice(
                    (x0 - step * 0.5 * (start in (0, 270)), y0, x0 + step * 1.0, y0 + step),
                    start,
                    start + 180,
                    fill=col,
                )
            elif kind == 2:
                d.rectangle((x0, y0, x0 + step, y0 + step * rng.uniform(0.3, 1.0)), fill=col)
            elif kind == 3:
                corner = int(rng.integers(0, 4))
                pts = [(x0, y0), (x0 + step, y0), (x0 + step, y0 + step), (x0, y0 + step)]
                pts.pop(corner)
                d.polygon(pts, fill=col)
            else:
                r = step * rng.uniform(0.15, 0.35)
                cx, cy = x0 + step / 2, y0 + step / 2
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
    for _ in range(int(rng.integers(1, 4))):
        y = rng.uniform(0.1, 0.9) * size
        d.line((0, y, size, y + rng.uniform(-0.3, 0.3) * size), fill=cols[-1], width=int(size * 0.012))
    return np.asarray(img, dtype=np.float32) / 255.0


def _style_flow(rng, pal, size):
    dark = rng.random() < 0.7
    bgc = np.array([0.05, 0.05, 0.08]) if dark else np.array([0.95, 0.93, 0.88])
    img = Image.new("RGB", (size, size), tuple(int(v * 255) for v in bgc))
    d = ImageDraw.Draw(img, "RGBA")
    freqs = rng.uniform(1.0, 4.0, (3, 2))
    phases = rng.uniform(0, 2 * np.pi, 3)
    n_lines, steps = 700, 48
    p = rng.uniform(0, 1, (n_lines, 2))
    paths = [p.copy()]
    for _ in range(steps):
        ang = (
            sum(
                np.sin(p[:, 0] * f[0] * 2 * np.pi + ph) + np.cos(p[:, 1] * f[1] * 2 * np.pi - ph)
                for f, ph in zip(freqs, phases, strict=True)
            )
            * 1.2
        )
        p = p + 0.006 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        paths.append(p.copy())
    arr = np.stack(paths, axis=1) * size
    cols = [tuple(int(v * 255) for v in c) for c in pal]
    width = max(2, int(size / 400))
    for i in range(n_lines):
        c = cols[i % len(cols)]
        d.line([tuple(q) for q in arr[i]], fill=(*c, 170), width=width)
    return np.asarray(img, dtype=np.float32) / 255.0


def _style_halftone(rng, pal, size):
    paper = np.array([0.96, 0.94, 0.88])
    out = np.ones((size, size, 3), dtype=np.float32) * paper.astype(np.float32)
    cells = int(rng.integers(36, 56))
    for layer in range(2):
        field = _smooth_field(rng, 2, k=5, grid=cells)[..., 0]
        ink = pal[int(rng.integers(0, len(pal)))] if layer else pal[0]
        mask = Image.new("L", (size, size), 0)
        d = ImageDraw.Draw(mask)
        step = size / cells
        off = rng.uniform(0, step * 0.3, 2) if layer else np.zeros(2)
        for gy in range(cells):
            for gx in range(cells):
                r = step * 0.62 * np.sqrt(field[gy, gx])
                if r < 0.6:
                    continue
                cx, cy = (gx + 0.5 + 0.5 * (gy % 2 and layer)) * step + off[0], (gy + 0.5) * step + off[1]
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        m = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
        out = out * (1 - m * (1 - ink.astype(np.float32)))  # multiply blend: riso overprint
    return out


def _style_bokeh(rng, pal, size):
    base = _upsample(_smooth_field(rng, len(pal), k=4) @ (pal * 0.35), size)
    img = Image.fromarray((base * 255).astype(np.uint8)).convert("RGBA")
    for blur, count in ((size / 45, 26), (size / 140, 22)):
        layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        for _ in range(count):
            c = pal[int(rng.integers(0, len(pal)))]
            c = np.clip(c * 1.25 + 0.1, 0, 1)
            r = size * rng.uniform(0.03, 0.12)
            cx, cy = rng.uniform(0, size, 2)
            d.ellipse(
                (cx - r, cy - r, cx + r, cy + r),
                fill=(*(int(v * 255) for v in c), int(rng.integers(70, 170))),
            )
        small = layer.resize((size // 4, size // 4), Image.Resampling.BILINEAR)
        soft = small.filter(ImageFilter.GaussianBlur(blur / 4)).resize((size, size), Image.Resampling.BICUBIC)
        img = Image.alpha_composite(img, soft)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _style_minimal(rng, pal, size):
    c0 = pal[int(rng.integers(0, len(pal)))]
    img = Image.new("RGB", (size, size), tuple(int(v * 255) for v in c0))
    d = ImageDraw.Draw(img)
    c1 = tuple(int(v * 255) for v in pal[int(rng.integers(0, len(pal)))])
    kind = int(rng.integers(0, 3))
    if kind == 0:
        r = size * rng.uniform(0.18, 0.3)
        cx, cy = size * rng.uniform(0.3, 0.7), size * rng.uniform(0.25, 0.45)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c1)
    elif kind == 1:
        for i in range(int(rng.integers(3, 9))):
            y = size * (0.12 + i * 0.05)
            d.rectangle((size * 0.1, y, size * 0.9, y + size * 0.018), fill=c1)
    else:
        d.line((size * 0.08, size * 0.92, size * 0.92, size * 0.08), fill=c1, width=int(size * 0.03))
    return np.asarray(img, dtype=np.float32) / 255.0


_STYLE_FUNCS = {
    "gradient": _style_gradient,
    "bauhaus": _style_bauhaus,
    "flow": _style_flow,
    "halftone": _style_halftone,
    "bokeh": _style_bokeh,
    "minimal": _style_minimal,
}


_FALLBACK_FONT_GLOBS = (
    "/usr/share/fonts/**/*CJK*.tt[cf]",
    "/usr/share/fonts/**/*CJK*.otf",
    "/usr/share/fonts/**/DroidSansFallback*.ttf",
    "/usr/share/fonts/**/NanumGothic*.ttf",
    "/usr/local/share/fonts/**/*CJK*.tt[cf]",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msgothic.ttc",
    "C:/Windows/Fonts/malgun.ttf",
)


def _load_font(name: str, px: int):
    """A bundled font by file name (``core/album_data``) or a system font by absolute path.

    Falls back to Pillow's built-in scalable font if the file cannot be read.
    """
    path = Path(name) if Path(name).is_absolute() else DATA_DIR / name
    try:
        return ImageFont.truetype(str(path), px)
    except OSError:
        return ImageFont.load_default(size=px)


def _system_fallback_fonts(limit: int = 4) -> list[str]:
    """Installed fonts with CJK coverage (none are required; the bundled DejaVu covers Latin,
    Greek, Cyrillic, Arabic and Hebrew)."""
    import glob

    found: list[str] = []
    for pattern in _FALLBACK_FONT_GLOBS:
        for p in sorted(glob.glob(pattern, recursive=True)):
            if p not in found:
                found.append(p)
            if len(found) >= limit:
                return found
    return found


def _pick_font(text: str, preferred: str) -> tuple[str, str]:
    """The font that can draw most of ``text`` (the bundled one unless a system font does better)."""
    best, best_txt = preferred, renderable_text(text, font_name=preferred)
    if len(best_txt) < len(re.sub(r"\s+", " ", text).strip()):
        for path in _system_fallback_fonts():
            txt = renderable_text(text, font_name=path)
            if len(txt) > len(best_txt):
                best, best_txt = path, txt
    return best, best_txt


def _glyph_bitmap(font, ch: str) -> tuple:
    bbox = font.getbbox(ch)
    w, h = max(1, bbox[2] - bbox[0]), max(1, bbox[3] - bbox[1])
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).text((-bbox[0], -bbox[1]), ch, font=font, fill=255)
    return bbox[2] - bbox[0], bbox[3] - bbox[1], im.tobytes()


def renderable_text(text: str, *, font_name: str = _FONT_SANS) -> str:
    """The part of ``text`` the cover font can draw: characters without a glyph are dropped.

    A character whose rendered bitmap equals the font's "missing glyph" box (or that draws nothing
    although it is not a space or a mark) is removed, so no tofu boxes are ever drawn.

    Examples
    --------
    >>> renderable_text("Night 🌙 Drive")
    'Night Drive'
    """
    font = _load_font(font_name, 32)
    notdef = _glyph_bitmap(font, "\U0010fffd")
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace():
            kept.append(" ")
        elif cat.startswith("M"):
            if kept and kept[-1] != " ":
                kept.append(ch)
        else:
            g = _glyph_bitmap(font, ch)
            if g != notdef and (g[0] > 0 or cat.startswith("P") or cat.startswith("S")):
                kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


def _wrap(text: str, font, width: float, max_lines: int) -> list[str] | None:
    words = text.split(" ")
    lines: list[str] = []
    cur = ""
    for w in words:
        trial = f"{cur} {w}".strip()
        if font.getlength(trial) <= width:
            cur = trial
            continue
        if cur:
            lines.append(cur)
        cur = w
        while font.getlength(cur) > width:  # a single over-long word: break it
            cut = len(cur)
            while cut > 1 and font.getlength(cur[:cut]) > width:
                cut -= 1
            lines.append(cur[:cut])
            cur = cur[cut:]
    if cur:
        lines.append(cur)
    return lines if len(lines) <= max_lines else None


def _fit_title(text: str, font_name: str, size: int, width: float) -> tuple:
    px = int(size * 0.115)
    while px > int(size * 0.03):
        font = _load_font(font_name, px)
        lines = _wrap(text, font, width, 3)
        if lines:
            return font, lines, px
        px = int(px * 0.9)
    font = _load_font(font_name, px)
    lines = _wrap(text, font, width, 99) or [text]
    return font, lines[:3], px


def _align_offset(line: str, font, block_w: int, *, center: bool) -> float:
    """Left-align, centre, or right-align a line whose first strong character is right-to-left."""
    free = max(0.0, block_w - font.getlength(line))
    if center:
        return free / 2
    for ch in line:
        bidi = unicodedata.bidirectional(ch)
        if bidi in ("R", "AL"):
            return free
        if bidi == "L":
            return 0.0
    return 0.0


def make_cover(
    *,
    album: str,
    artist: str = "",
    genre: str | None = None,
    mood: str | None = None,
    style: str = "auto",
    seed: int = 0,
    size: int = 1024,
) -> CoverResult:
    """Render a square album cover (PNG) with the album title and artist.

    The artwork is procedural (numpy + Pillow), no learned model: six styles stand in for the
    original project's GAN checkpoints: ``gradient`` (a smooth colour mesh with a light sweep),
    ``bauhaus`` (geometric shapes on a grid), ``flow`` (particles traced through a sinusoidal flow
    field), ``halftone`` (two misregistered dot screens overprinted like a risograph), ``bokeh``
    (blurred out-of-focus lights) and ``minimal`` (one flat colour, one shape, big type). The palette
    comes from the genre (hue families) and mood (saturation/lightness); the seed and the names vary
    layout, harmony and shapes. The title and artist are drawn as pixels with a bundled DejaVu font
    (characters it cannot draw are dropped; nothing drawable left gives the label "Untitled"), on a
    panel darkened or lightened until the WCAG contrast ratio against the worst background pixel
    under the text is at least 4.5, measured again on the final image.

    Parameters
    ----------
    album, artist : str
        User text (cleaned with :func:`clean_text`; the album name must not be empty).
    genre, mood : str, optional
        See :data:`GENRES`, :data:`MOODS`; unknown values fall back to a neutral palette with a note.
    style : str
        One of :data:`STYLES` or ``"auto"``.
    seed : int
        Same inputs and seed give the same image.
    size : int
        Edge length in pixels, 1024-2048.

    Returns
    -------
    CoverResult

    Examples
    --------
    >>> r = make_cover(album="Neon Skyline", artist="Mira", genre="edm", seed=1)
    >>> r.png[:8] == b"\\x89PNG\\r\\n\\x1a\\n" and r.contrast_ratio >= 4.5
    True
    """
    from core.errors import InputError

    name = clean_text(album, field="album name")
    who = clean_text(artist, field="artist", required=False)
    if not isinstance(size, int) or not (MIN_COVER <= size <= MAX_COVER):
        raise InputError(
            f"Cover size must be an integer from {MIN_COVER} to {MAX_COVER} pixels, got {size!r}."
        )
    st_in = (style or "auto").strip().lower()
    if st_in != "auto" and st_in not in STYLES:
        raise InputError(f"Unknown cover style {style!r}; choose auto or one of {', '.join(STYLES)}.")
    g, g_note = resolve_genre(genre)
    m, m_note = resolve_mood(mood)
    notes = [x for x in (g_note, m_note) if x]
    key = zlib.crc32(f"{normalize_title(name)}|{normalize_title(who)}".encode())
    rng = np.random.default_rng([int(seed) % (2**63), key, STYLES.index(st_in) + 1 if st_in != "auto" else 0])
    if st_in == "auto":
        choices = _STYLE_BY_GENRE.get(g or "", STYLES)
        st_name = str(choices[int(rng.integers(0, len(choices)))])
    else:
        st_name = st_in
    pal = _palette(rng, g, m)
    art = _STYLE_FUNCS[st_name](rng, pal, size).astype(np.float32)
    if st_name in ("gradient", "bokeh", "minimal", "flow"):
        art = art + rng.standard_normal((size, size, 1), dtype=np.float32) * 0.018  # film grain
    img8 = np.clip(art * 255.0 + 0.5, 0, 255).astype(np.uint8)

    # --- typography ---
    font_name = _FONT_SERIF if st_name in ("minimal", "halftone") and rng.random() < 0.6 else _FONT_SANS
    font_name, title_txt = _pick_font(name, font_name)
    afont_name, artist_txt = _pick_font(who, _FONT_SANS) if who else (_FONT_SANS, "")
    if title_txt != name:
        notes.append("Some characters of the album name have no glyph in the cover font and were left out.")
    if not any(ch.isalnum() for ch in title_txt):
        title_txt = "Untitled"
    if who and artist_txt != who:
        notes.append("Some characters of the artist name have no glyph in the cover font and were left out.")
    if not any(ch.isalnum() for ch in artist_txt):
        artist_txt = ""
    if st_name in ("bauhaus", "halftone") and title_txt.isascii():
        title_txt = title_txt.upper()
    margin = int(size * 0.06)
    pad = int(size * 0.035)
    inner_w = size - 2 * margin - 2 * pad
    tfont, lines, tpx = _fit_title(title_txt, font_name, size, inner_w)
    afont = _load_font(afont_name, max(16, int(size * 0.042)))
    line_h = int(tpx * 1.18)
    a_h = int(size * 0.042 * 1.3) if artist_txt else 0
    block_h = line_h * len(lines) + (int(size * 0.02) + a_h if artist_txt else 0)
    block_w = max(
        [tfont.getlength(ln) for ln in lines] + ([afont.getlength(artist_txt)] if artist_txt else [])
    )
    block_w = min(int(block_w) + 1, inner_w)
    place = "center" if st_name == "minimal" else ("top" if rng.random() < 0.35 else "bottom")
    x0 = margin if place != "center" else (size - block_w) // 2 - pad
    if place == "top":
        y0 = margin
    elif place == "bottom":
        y0 = size - margin - block_h - 2 * pad
    else:
        y0 = int(size * 0.62) - pad
        y0 = min(y0, size - margin - block_h - 2 * pad)
    box = (int(x0), int(y0), int(x0 + block_w + 2 * pad), int(y0 + block_h + 2 * pad))

    region8 = img8[box[1] : box[3], box[0] : box[2]]
    region = region8.astype(np.float32)
    lum = relative_luminance(region8)
    white = contrast_ratio(1.0, float(lum.mean())) >= contrast_ratio(0.0, float(lum.mean()))
    text_rgb = (255, 255, 255) if white else (14, 14, 18)
    panel = (
        _hls(float(rng.uniform(0, 360)), 0.06, 0.4) if white else _hls(float(rng.uniform(0, 360)), 0.96, 0.3)
    ) * 255
    lt = float(relative_luminance(np.array(text_rgb)))
    min_alpha = {"minimal": 0.0, "bauhaus": 0.85, "halftone": 0.8}.get(st_name, 0.35)
    for alpha in np.linspace(min_alpha, 1.0, 14):
        blended = region * (1 - alpha) + panel * alpha
        q = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        bl = relative_luminance(q)
        worst = bl.max() if white else bl.min()
        if contrast_ratio(lt, worst) >= MIN_CONTRAST + 0.1:
            break
    img8[box[1] : box[3], box[0] : box[2]] = q
    img = Image.fromarray(img8)
    draw = ImageDraw.Draw(img)
    mask = Image.new("L", (size, size), 0)
    mdraw = ImageDraw.Draw(mask)
    ty = box[1] + pad
    drawn = []
    for ln in lines:
        tx = box[0] + pad + _align_offset(ln, tfont, block_w, center=place == "center")
        for d, fill in ((draw, text_rgb), (mdraw, 255)):
            d.text((tx, ty), ln, font=tfont, fill=fill)
        ty += line_h
        drawn.append(ln)
    if artist_txt:
        ty += int(size * 0.02)
        tx = box[0] + pad + _align_offset(artist_txt, afont, block_w, center=place == "center")
        for d, fill in ((draw, text_rgb), (mdraw, 255)):
            d.text((tx, ty), artist_txt, font=afont, fill=fill)
        drawn.append(artist_txt)

    final = np.asarray(img)
    glyphs = np.zeros((size, size), dtype=bool)
    glyphs[box[1] : box[3], box[0] : box[2]] = np.asarray(mask.crop(box).filter(ImageFilter.MaxFilter(5))) > 0
    measured = measure_text_contrast(final, box=box, text_rgb=text_rgb, text_mask=glyphs)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return CoverResult(
        png=buf.getvalue(),
        style=st_name,
        contrast_ratio=round(measured, 3),
        text_color=text_rgb,
        text_boxes=(box,),
        drawn_text=tuple(drawn),
        notes=tuple(notes),
        size=size,
    )


def measure_text_contrast(image: np.ndarray, *, box, text_rgb, text_mask: np.ndarray) -> float:
    """WCAG contrast between ``text_rgb`` and the worst background pixel inside ``box`` of ``image``.

    Background pixels are those of the box outside ``text_mask`` (the glyphs, dilated so that
    anti-aliased edges count as text); "worst" is the background pixel closest in luminance to the
    text colour.
    """
    x0, y0, x1, y1 = box
    region = np.asarray(image)[y0:y1, x0:x1, :3]
    lum = relative_luminance(region if region.dtype == np.uint8 else region.astype(np.float32))
    lt = float(relative_luminance(np.array(text_rgb)))
    bg = lum[~np.asarray(text_mask, dtype=bool)[y0:y1, x0:x1]]
    if bg.size == 0:
        return 1.0
    worst = bg.max() if lt > 0.5 else bg.min()
    return float(contrast_ratio(lt, worst))
