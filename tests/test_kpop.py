"""K-pop generator: training, generation, copy detection and bad input (core.kpop, models.kpop)."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core import kpop  # noqa: E402
from core.audio.io import encode  # noqa: E402
from core.audio.loudness import integrated_lufs, true_peak_dbfs  # noqa: E402
from core.errors import InputError, LimitError, ModelError  # noqa: E402
from models.kpop import FORMAT_VERSION, KpopConfig, NumpyStepper, SpectralLSTM, generate  # noqa: E402

SR = 16000
#: A small model so the tests stay fast.
CFG = KpopConfig(n_mels=48, hidden=64, layers=2, group=4)
SCALE = (0, 2, 4, 5, 7, 9, 11, 12)


def arpeggio_song(seed: int, *, seconds: float = 8.0, sr: int = SR) -> np.ndarray:
    """A mono ``(1, n)`` song of plucked harmonic notes from a C major scale, 4 notes per second."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n, np.float64)
    note_len = sr // 4
    root = 220.0 * 2 ** (rng.integers(0, 5) / 12)
    for k in range(n // note_len):
        f = root * 2 ** (SCALE[rng.integers(0, len(SCALE))] / 12)
        t = np.arange(note_len) / sr
        env = np.exp(-t * 5.0)
        a = k * note_len
        for h, amp in ((1, 0.3), (2, 0.15), (3, 0.08), (4, 0.04)):
            y[a : a + note_len] += amp * env * np.sin(2 * np.pi * f * h * t)
    return y[None].astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tests share 2 cores with other work: small models run best on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def catalogue() -> list[np.ndarray]:
    return [arpeggio_song(i) for i in range(3)]


@pytest.fixture(scope="module")
def trained(catalogue):
    return kpop.train(catalogue, sr=SR, epochs=8, cfg=CFG, seq_steps=16, batch_size=16, seed=0)


@pytest.fixture(scope="module")
def model(trained):
    return kpop.load_model(trained.checkpoint)


# --------------------------------------------------------------------------- training


def test_training_lowers_validation_loss(trained):
    h = trained.history
    assert h["epoch"] == list(range(1, 9))
    assert len(h["val_loss"]) == len(h["train_loss"]) == 8
    assert h["val_loss"][-1] < h["val_loss"][0] - 0.1
    # far better than the training-set statistics alone on held-out frames
    assert min(h["val_loss"]) < trained.baselines["mean_frame_nll"] - 0.5
    assert trained.baselines["repeat_last_l1"] < trained.baselines["mean_frame_l1"]
    assert trained.stopped is None
    assert trained.frames_per_second > 0


def test_checkpoint_layout(trained):
    ckpt = torch.load(io.BytesIO(trained.checkpoint), map_location="cpu", weights_only=True)
    assert ckpt["format_version"] == FORMAT_VERSION
    assert KpopConfig.from_dict(ckpt["config"]) == CFG
    assert set(ckpt["norm"]) == {"mean", "std"}
    assert tuple(ckpt["norm"]["mean"].shape) == (CFG.n_mels,)
    assert ckpt["primes"].shape[0] == kpop.N_PRIMES and ckpt["primes"].shape[2] == CFG.n_mels
    assert ckpt["meta"]["songs"] == 3


def test_stop_saves_a_usable_model(catalogue):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    res = kpop.train(
        catalogue, sr=SR, epochs=50, cfg=CFG, seq_steps=16, batch_size=4, should_stop=should_stop
    )
    assert res.stopped == "cancelled"
    assert len(res.history["val_loss"]) == 1 and 0 < res.history["epoch"][0] < 1  # a partial first epoch
    lm = kpop.load_model(res.checkpoint)
    assert lm.history["val_loss"] == res.history["val_loss"]


def test_time_budget_stops_training(catalogue):
    res = kpop.train(catalogue, sr=SR, epochs=50, cfg=CFG, seq_steps=16, batch_size=16, max_seconds=0.5)
    assert res.stopped == "time"
    assert res.history["epoch"][-1] < 50


def test_resume_continues_history(catalogue, trained):
    res = kpop.train(catalogue, sr=SR, epochs=2, resume_from=trained.checkpoint, seq_steps=16, batch_size=16)
    assert res.history["epoch"] == [*range(1, 9), 9, 10]
    assert res.history["val_loss"][:8] == trained.history["val_loss"]
    # the resumed run starts from the trained weights, not from scratch
    assert res.history["val_loss"][8] < trained.history["val_loss"][0]


def test_progress_reports_fractions(catalogue):
    seen: list[float] = []
    kpop.train(catalogue, sr=SR, epochs=1, cfg=CFG, seq_steps=16, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen)


# --------------------------------------------------------------------------- generation


def test_generation_is_deterministic_per_seed_and_varies_across_seeds(model):
    a = kpop.generate_audio(model_or_ckpt=model, seconds=3, seed=7)
    b = kpop.generate_audio(model_or_ckpt=model, seconds=3, seed=7)
    c = kpop.generate_audio(model_or_ckpt=model, seconds=3, seed=8)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.y.shape == (2, 3 * 44100) and a.y.dtype == np.float32
    assert np.abs(a.spectrogram - c.spectrogram).mean() > 1.0
    assert not np.allclose(a.y, c.y)


def test_guide_steers_generation_towards_the_catalogue():
    shipped = kpop.load_model()
    free = kpop.generate_audio(model_or_ckpt=shipped, seconds=3, seed=5, guide=0.0)
    steered = kpop.generate_audio(model_or_ckpt=shipped, seconds=3, seed=5, guide=0.5)
    assert np.abs(free.spectrogram - steered.spectrogram).mean() > 0.5  # dB
    guide = kpop.make_guide(shipped, seed=5, n_frames=100)
    assert guide.shape == (100, shipped.cfg.n_mels)
    np.testing.assert_array_equal(guide, kpop.make_guide(shipped, seed=5, n_frames=100))


@pytest.mark.parametrize("residual", [False, True])
def test_numpy_stepper_matches_the_torch_module(residual):
    torch.manual_seed(0)
    m = SpectralLSTM(KpopConfig(n_mels=16, hidden=32, group=2, rank=3, residual=residual)).eval()
    if residual:  # zero-initialized head: give it weights so the check means something
        torch.nn.init.normal_(m.head.weight, std=0.1)
    x = torch.randn(1, 6, 32)
    with torch.no_grad():
        mu_t, aux_t, _ = m(x)
    stepper = NumpyStepper(m)
    h = [np.zeros(32, np.float32)] * 2
    c = [np.zeros(32, np.float32)] * 2
    for i in range(6):
        mu, aux, h, c = stepper.step(x[0, i].numpy(), h, c)
        np.testing.assert_allclose(mu, mu_t[0, i].numpy(), atol=1e-5)
        np.testing.assert_allclose(aux, aux_t[0, i].numpy(), atol=1e-5)


def test_temperature_controls_sampling_noise(model):
    prime = kpop.make_prime(model, seed=3)
    cold = [generate(model.model, prime_frames=prime, n_frames=200, temperature=0.0, seed=s) for s in (1, 2)]
    np.testing.assert_array_equal(cold[0], cold[1])  # no sampling noise at temperature 0
    hot = [generate(model.model, prime_frames=prime, n_frames=200, temperature=1.0, seed=s) for s in (1, 2)]
    assert np.abs(hot[0] - hot[1]).mean() > 0.05


def test_output_is_mastered_music_not_silence_or_noise(model):
    y, spec = kpop.generate_audio(model_or_ckpt=model, seconds=4, seed=1)
    assert spec.shape[0] == CFG.n_mels
    lufs = integrated_lufs(y, sr=44100)
    assert -17.0 < lufs < -11.0  # mastered to -14 LUFS
    assert true_peak_dbfs(y, sr=44100) <= -0.8
    flat = kpop.spectral_flatness(y)
    white = np.random.default_rng(0).standard_normal((2, y.shape[1])).astype(np.float32) * 0.1
    assert kpop.spectral_flatness(white) > 0.4  # the measure can fail
    assert 0.0 < flat < 0.3


def test_generation_is_not_a_copy_of_the_training_songs(model, catalogue):
    gen = kpop.generate_audio(model_or_ckpt=model, seconds=6, seed=2)
    ds = kpop.build_dataset(catalogue, sr=SR, cfg=CFG)
    training = [model.normalize(s) for s in ds.songs]
    generated = model.normalize(gen.spectrogram.T)
    rep = kpop.copy_score(generated, training, group=CFG.group)
    assert rep.longest_run_seconds < 1.0
    # a verbatim excerpt of a training song is detected as a long run
    excerpt = training[1][40:290]
    copied = kpop.copy_score(excerpt, training, group=CFG.group)
    assert copied.longest_run_steps >= 60
    assert copied.near_fraction == 1.0


def test_seed_audio_primes_generation(model, catalogue):
    song = np.tile(arpeggio_song(5, sr=44100), (2, 1))
    a = kpop.generate_audio(model_or_ckpt=model, seconds=2, seed=4, seed_audio=song, seed_mix=0.9)
    b = kpop.generate_audio(model_or_ckpt=model, seconds=2, seed=4, seed_mix=0.9)
    assert not np.allclose(a.spectrogram, b.spectrogram)
    with pytest.raises(InputError, match="silent"):
        kpop.generate_audio(
            model_or_ckpt=model, seconds=2, seed=4, seed_audio=np.zeros((2, 44100), np.float32)
        )


def test_shipped_default_model_generates():
    lm = kpop.load_model()
    assert lm.cfg.sr == 16000 and lm.primes.shape[0] >= 1
    assert kpop.DEFAULT_CHECKPOINT.stat().st_size < 8 * 1024 * 1024
    y, _ = kpop.generate_audio(model_or_ckpt=lm, seconds=2, seed=0)
    assert y.shape == (2, 88200)
    assert integrated_lufs(y, sr=44100) > -20.0


# --------------------------------------------------------------------------- bad input


def test_zero_one_and_silent_songs_are_refused(catalogue):
    with pytest.raises(InputError, match="no songs"):
        kpop.train([], sr=SR, epochs=1, cfg=CFG)
    with pytest.raises(InputError, match="at least 2 non-silent songs"):
        kpop.train(catalogue[:1], sr=SR, epochs=1, cfg=CFG)
    silent = [np.zeros((2, SR * 5), np.float32), np.full((1, SR * 5), 1e-6, np.float32)]
    with pytest.raises(InputError, match="silent"):
        kpop.train(silent, sr=SR, epochs=1, cfg=CFG)
    # one silent song among good ones is skipped with a warning
    ds = kpop.build_dataset([*catalogue, silent[0]], sr=SR, cfg=CFG)
    assert len(ds.songs) == 3 and any("silent" in w for w in ds.warnings)


def test_catalogue_over_the_limit_is_cut_with_a_message(catalogue):
    ds = kpop.build_dataset(catalogue, sr=SR, cfg=CFG, max_seconds=12.0)
    assert abs(ds.seconds - 12.0) < 0.1
    assert any("cut to 4 s" in w for w in ds.warnings)
    ds2 = kpop.build_dataset([*catalogue, catalogue[0]], sr=SR, cfg=CFG, max_seconds=16.0)
    assert len(ds2.songs) == 2 and any("limit" in w and "skipped" in w for w in ds2.warnings)
    assert kpop.MAX_CATALOGUE_SECONDS == 3600.0
    with pytest.raises(LimitError, match="at most"):
        kpop.build_dataset([catalogue[0]] * (kpop.MAX_SONGS + 1), sr=SR, cfg=CFG)


def test_too_little_audio_is_refused():
    short = [arpeggio_song(i, seconds=2.0) for i in range(2)]
    with pytest.raises(InputError, match="at least 10 s"):
        kpop.build_dataset(short, sr=SR, cfg=CFG)


def test_bad_training_parameters(catalogue):
    for bad in (0, -1, kpop.MAX_EPOCHS + 1, 2.5, True):
        with pytest.raises(InputError, match="epochs"):
            kpop.train(catalogue, sr=SR, epochs=bad, cfg=CFG)
    with pytest.raises(InputError, match="val_fraction"):
        kpop.train(catalogue, sr=SR, epochs=1, cfg=CFG, val_fraction=0.9)
    with pytest.raises(InputError, match="sample rate"):
        kpop.build_dataset(catalogue, sr=10, cfg=CFG)
    nan = [c.copy() for c in catalogue]
    nan[0][0, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        kpop.build_dataset(nan, sr=SR, cfg=CFG)


def test_corrupt_files_are_skipped_when_loading_a_catalogue(catalogue):
    files = [(f"song{i}.wav", encode(np.tile(c, (2, 1)), sr=SR)) for i, c in enumerate(catalogue)]
    files.insert(1, ("broken.wav", b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100)))
    files.append(("notes.txt", b"hello"))
    cat = kpop.load_catalogue(files, cfg=CFG)
    assert cat.names == ["song0.wav", "song1.wav", "song2.wav"]
    assert cat.sr == 16000 and all(t.shape[0] == 1 for t in cat.tracks)
    assert any("broken.wav: skipped" in w for w in cat.warnings)
    assert any("notes.txt: skipped" in w for w in cat.warnings)
    capped = kpop.load_catalogue(files, cfg=CFG, max_seconds=10.0)
    assert abs(capped.seconds - 10.0) < 0.01 and any("limit" in w for w in capped.warnings)
    with pytest.raises(InputError, match="none of the files"):
        kpop.load_catalogue([("a.wav", b"garbage" * 10)], cfg=CFG)
    with pytest.raises(InputError, match="no songs"):
        kpop.load_catalogue([], cfg=CFG)
    with pytest.raises(LimitError, match=f"{kpop.MAX_SONGS + 1} songs is too many for one training"):
        kpop.load_catalogue([("a.wav", b"RIFF")] * (kpop.MAX_SONGS + 1), cfg=CFG)


def test_missing_corrupt_and_incompatible_checkpoints(tmp_path, trained):
    with pytest.raises(ModelError, match="not found"):
        kpop.load_model(tmp_path / "nope.pt")
    with pytest.raises(ModelError, match="corrupt"):
        kpop.load_model(b"not a checkpoint at all")
    with pytest.raises(ModelError, match="empty"):
        kpop.load_model(b"")
    ckpt = torch.load(io.BytesIO(trained.checkpoint), map_location="cpu", weights_only=True)
    with pytest.raises(ModelError, match="format version 99"):
        kpop.load_model({**ckpt, "format_version": 99})
    with pytest.raises(ModelError, match="missing norm"):
        kpop.load_model({k: v for k, v in ckpt.items() if k != "norm"})
    other = SpectralLSTM(KpopConfig(n_mels=48, hidden=32))
    with pytest.raises(ModelError, match="does not match"):
        kpop.load_model({**ckpt, "model": other.state_dict()})
    with pytest.raises(ModelError):
        kpop.generate_audio(model_or_ckpt=tmp_path / "nope.pt", seconds=2, seed=0)


def test_bad_generation_parameters(model):
    for kwargs, word in (
        ({"seconds": 0.5}, "seconds"),
        ({"seconds": kpop.MAX_GENERATE_SECONDS + 1}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 3.0}, "temperature"),
        ({"seed_mix": 1.5}, "seed_mix"),
        ({"guide": 0.9}, "guide"),
        ({"seed": -1}, "seed"),
        ({"noise": "x"}, "noise"),
    ):
        args = {"seconds": 2, "seed": 0, **kwargs}
        with pytest.raises(InputError, match=word):
            kpop.generate_audio(model_or_ckpt=model, **args)


# --------------------------------------------------------------------------- CLI


def test_cli_train_then_generate(tmp_path, catalogue, capsys):
    import json

    from core.__main__ import main

    songs = tmp_path / "songs"
    songs.mkdir()
    for i, c in enumerate(catalogue):
        (songs / f"s{i}.wav").write_bytes(encode(np.tile(c, (2, 1)), sr=SR))
    (songs / "broken.mp3").write_bytes(b"ID3" + bytes(64))
    ckpt = tmp_path / "mine.pt"
    assert main(["kpop", "train", "--audio", str(songs), "--out", str(ckpt), "--epochs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["songs"] == 3 and out["epochs"] == 1 and any("broken.mp3" in w for w in out["warnings"])
    wav = tmp_path / "gen.wav"
    args = [
        "kpop",
        "generate",
        "--seconds",
        "2",
        "--seed",
        "3",
        "--out",
        str(wav),
        "--model",
        str(ckpt),
        "--json",
    ]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert wav.stat().st_size > 44100 * 2 * 2 and info["seconds"] == 2.0
    # bad input: a clear message and exit status 2
    assert (
        main(["kpop", "generate", "--seconds", "2", "--out", str(tmp_path / "x.wav"), "--model", "nope.pt"])
        == 2
    )
    assert "not found" in capsys.readouterr().err
    assert main(["kpop", "train", "--audio", str(tmp_path / "missing"), "--out", str(ckpt)]) == 2
    assert main(["kpop", "generate", "--out", str(tmp_path / "x.doc")]) == 2


# --------------------------------------------------------------------------- background training job


def test_training_job_saves_a_user_model_and_publishes_its_history(tmp_path, catalogue):
    from core.db.engine import make_engine, migrate
    from core.jobs import JobRunner
    from core.storage import LocalStorage

    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate(engine)
    store = LocalStorage(tmp_path / "media")
    runner = JobRunner(engine)
    files = [(f"s{i}.wav", encode(np.tile(c, (2, 1)), sr=SR)) for i, c in enumerate(catalogue)]
    job_id = runner.submit(
        owner_id=None,
        kind=kpop.TRAIN_JOB_KIND,
        params={"name": "Arps"},
        fn=lambda ctx: kpop.run_training_job(
            ctx, files=files, storage=store, epochs=2, max_seconds=120, cfg=CFG
        ),
    )
    job = runner.wait(job_id, timeout=120)
    assert job.status == "done", job.message
    assert job.state["history"]["epoch"] == [1, 2] and len(job.state["history"]["val_loss"]) == 2
    assert job.result["epochs"] == 2 and "best model was saved" in job.result["message"]
    lm = kpop.load_model(store.get(job.result_key))
    assert lm.meta["name"] == "Arps" and lm.meta["songs"] == 3
    models = kpop.user_models(runner, owner_id=None)
    assert [(m.name, m.key, m.epochs) for m in models] == [("Arps", job.result_key, 2)]
    assert "Arps" in models[0].label
