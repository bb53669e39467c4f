"""K-pop generator: generate new audio with a spectral LSTM, or train one on your own songs.

Generate: pick the shipped model or one of yours, an optional seed song, length, temperature and seed;
the result is deterministic for its settings, so it is cached by them and survives reruns.
Train: pick library tracks and/or uploads; the training runs as a background job
(:mod:`core.jobs`) whose progress and loss curve this page polls, so it keeps going while you use other
screens and is found again after a page reload. Your models are the files saved by your training jobs.
"""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from components import resources
from components.frame import in_frame
from components.session import require_user
from core import kpop
from core.errors import InputError, StudioError

in_frame()

st.title("K-pop generator")
st.caption(
    "A spectral LSTM learned the mel spectrogram frames of a catalogue of songs; from a partially random "
    "seed (a snippet of a song mixed with noise) it dreams up new audio. Train one on your own songs."
)
user = require_user("generate K-pop and train models on your songs")
runner = resources.job_runner()

gen_tab, train_tab = st.tabs(["Generate", "Train"])

# --------------------------------------------------------------------------- generate
with gen_tab:
    models = kpop.user_models(runner, owner_id=user.id)
    choices = {"default": "Default model (POP909 songs)"} | {m.key: m.label for m in models}
    with Session(resources.engine()) as s:
        from core.library import list_user_tracks

        tracks = {t.id: t.title for t in list_user_tracks(s, owner_id=user.id)}
    with st.form("kpop_generate_form"):
        model_key = st.selectbox("Model", list(choices), format_func=choices.get, key="kpop_model")
        seed_kind = st.radio(
            "Seed song",
            ["From the model's catalogue", "A song from my library", "Upload a song"],
            horizontal=True,
            key="kpop_seed_kind",
            help="The generator starts from a one-second snippet of this song mixed with noise.",
        )
        c1, c2 = st.columns(2)
        seed_track = c1.selectbox(
            "Library song",
            [None, *tracks],
            format_func=lambda i: "—" if i is None else tracks[i],
            key="kpop_track",
        )
        c2.file_uploader("Or upload a song", type=["wav", "flac", "ogg", "mp3"], key="kpop_upload")
        c1, c2, c3 = st.columns(3)
        seconds = c1.slider("Length (s)", 5, int(kpop.MAX_GENERATE_SECONDS), 30, step=5, key="kpop_seconds")
        temperature = c2.slider("Temperature", 0.0, 1.5, 0.8, step=0.05, key="kpop_temperature")
        seed = c3.number_input("Random seed", 0, 2**31 - 1, 0, step=1, key="kpop_seed")
        c1, c2 = st.columns(2)
        seed_mix = c1.slider(
            "Seed song share",
            0.0,
            1.0,
            0.5,
            step=0.05,
            key="kpop_seed_mix",
            help="How much of the seed is the song; the rest is noise.",
        )
        guide = c2.slider(
            "Steering",
            0.0,
            0.8,
            kpop.DEFAULT_GUIDE,
            step=0.05,
            key="kpop_guide",
            help="How strongly short pieces of the seed song keep the generation moving; 0 lets the model "
            "run free (it then tends to settle into a steady sound).",
        )
        go = st.form_submit_button("Generate", type="primary")

    def _seed_bytes(req: dict) -> tuple[bytes | None, str | None]:
        """The seed song's bytes for a request (kept out of session_state: re-read on each run)."""
        if req["seed_kind"] == "A song from my library":
            if req["seed_track"] is None:
                raise InputError("choose a song from your library as the seed, or another seed option")
            from core.library import audio_bytes, get_for_viewer

            with Session(resources.engine()) as s:
                track = get_for_viewer(s, track_id=req["seed_track"], viewer_id=user.id)
                data, fname, _ = audio_bytes(s, resources.storage(), track=track)
            return data, fname
        if req["seed_kind"] == "Upload a song":
            up = st.session_state.get("kpop_upload")
            if up is None:
                raise InputError("upload a song to use as the seed, or choose another seed option")
            return up.getvalue(), up.name
        return None, None

    if go:
        st.session_state["kpop_request"] = {
            "model_key": model_key,
            "seconds": float(seconds),
            "seed": int(seed),
            "temperature": float(temperature),
            "seed_mix": float(seed_mix),
            "guide": float(guide),
            "seed_kind": seed_kind,
            "seed_track": seed_track,
        }

    request = st.session_state.get("kpop_request")
    if request is not None:
        try:
            seed_data, seed_name = _seed_bytes(request)
            args = {k: v for k, v in request.items() if k not in ("seed_kind", "seed_track")}
            y, spec = resources.kpop_generate(**args, seed_data=seed_data, seed_name=seed_name)
        except StudioError as exc:
            st.session_state.pop("kpop_request", None)
            st.error(str(exc))
        else:
            import librosa
            import numpy as np

            from components.player import audio_player, download_buttons
            from components.plots import spectrogram_db_figure
            from components.track_actions import save_track_form
            from core.config import SAMPLE_RATE

            cfg = resources.kpop_model(request["model_key"]).cfg
            st.subheader(
                f"Seed {request['seed']} · {request['seconds']:.0f} s · temperature {request['temperature']}"
            )
            audio_player(y, sr=SAMPLE_RATE)
            freqs = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin, fmax=cfg.fmax)[1:-1]
            times = np.arange(spec.shape[1]) * cfg.hop / cfg.sr
            st.plotly_chart(
                spectrogram_db_figure(spec, freqs=freqs, times=times, title="Generated mel spectrogram"),
                config={"displayModeBar": False},
                key="kpop_spectrogram",
            )
            download_buttons(y, sr=SAMPLE_RATE, basename=f"kpop_seed{request['seed']}", key="kpop_dl")
            track_id = save_track_form(
                y,
                sr=SAMPLE_RATE,
                key="kpop",
                defaults={
                    "title": f"K-pop dream #{request['seed']}",
                    "genre": "k-pop",
                    "tags": ["kpop", "ai"],
                    "source": "kpop",
                },
            )
            if track_id is not None:
                st.success("Saved to your library.")

# --------------------------------------------------------------------------- train


def _job_view(job_id: int) -> None:
    """Progress, message, loss curve and stop button of a training job."""
    from components.plots import loss_curve_figure

    job = runner.get(job_id)
    hist = job.state.get("history") or {}
    if job.active:
        st.progress(job.progress, text=job.message or "starting...")
        if st.button("Stop training (keeps what it learned)", key="kpop_stop"):
            runner.cancel(job_id, owner_id=user.id)
            st.toast("Stopping after the current batch...")
    elif job.status == "failed":
        st.error(f"Training failed: {job.message}")
    else:
        st.success(job.message or "Training finished.")
    if hist.get("train_loss"):
        st.plotly_chart(
            loss_curve_figure(hist["train_loss"], hist.get("val_loss")),
            config={"displayModeBar": False},
            key=f"kpop_loss_{job_id}",
        )
    for w in job.state.get("warnings") or []:
        st.warning(w)


@st.fragment(run_every=2.0)
def _live_job(job_id: int) -> None:
    """Polls the job every 2 s while it runs; reruns the whole page once it ends."""
    _job_view(job_id)
    if not runner.get(job_id).active:
        st.rerun()


with train_tab:
    st.markdown(
        f"Train a model on **{kpop.MIN_SONGS} to {kpop.MAX_SONGS} songs** from your library or uploads. "
        f"Limits: at most **{kpop.MAX_CATALOGUE_SECONDS / 60:.0f} minutes** of audio in total (the rest is "
        f"cut), up to **{kpop.MAX_EPOCHS} epochs** and **{kpop.MAX_TRAIN_SECONDS / 60:.0f} minutes** of "
        "training; one training at a time per user. Silent or unreadable files are skipped. The training "
        "runs in the background: you can leave this page and come back."
    )
    latest = runner.latest(owner_id=user.id, kind=kpop.TRAIN_JOB_KIND)
    if latest is not None and latest.active:
        st.subheader(f"Training “{latest.params.get('name', 'model')}”")
        _live_job(latest.id)
    else:
        if latest is not None:
            with st.expander(f"Last training: {latest.params.get('name', 'model')} ({latest.status})"):
                _job_view(latest.id)
        with Session(resources.engine()) as s:
            from core.library import list_user_tracks

            lib = {t.id: t.title for t in list_user_tracks(s, owner_id=user.id)}
        my_models = {m.key: m.label for m in kpop.user_models(runner, owner_id=user.id)}
        with st.form("kpop_train_form"):
            name = st.text_input("Model name", value="My K-pop model", max_chars=60, key="kpop_train_name")
            picked = st.multiselect(
                "Songs from my library", list(lib), format_func=lib.get, key="kpop_train_tracks"
            )
            uploads = st.file_uploader(
                "Or upload songs",
                type=["wav", "flac", "ogg", "mp3", "m4a"],
                accept_multiple_files=True,
                key="kpop_train_uploads",
            )
            c1, c2, c3 = st.columns(3)
            epochs = c1.number_input(
                "Epochs", 1, kpop.MAX_EPOCHS, 20, step=1, key="kpop_train_epochs",
                help="Passes over your songs; training also stops at the time limit, keeping the best model.",
            )  # fmt: skip
            minutes = c2.slider(
                "Time limit (min)", 1, int(kpop.MAX_TRAIN_SECONDS // 60), 10, key="kpop_train_minutes"
            )
            resume = c3.selectbox(
                "Continue from",
                [None, *my_models],
                format_func=lambda k: "a new model" if k is None else my_models[k],
                key="kpop_train_resume",
            )
            start = st.form_submit_button("Start training", type="primary")
        if start:
            try:
                from core.audio.io import AudioLimits
                from core.library import audio_bytes, get_for_viewer

                files: list[tuple[str, bytes]] = []
                with Session(resources.engine()) as s:
                    for tid in picked:
                        track = get_for_viewer(s, track_id=tid, viewer_id=user.id)
                        data, fname, _ = audio_bytes(s, resources.storage(), track=track)
                        files.append((fname, data))
                # library tracks may be saved WAVs over the upload limit; uploads keep that limit
                limits = AudioLimits.for_library(max((len(data) for _, data in files), default=0))
                files += [(u.name, u.getvalue()) for u in uploads or []]
                if len(files) < kpop.MIN_SONGS:
                    raise InputError(
                        f"choose at least {kpop.MIN_SONGS} songs to train on (library and uploads), "
                        f"got {len(files)}"
                    )
                store = resources.storage()
                resume_bytes = store.get(resume) if resume else None
                params = {"name": name.strip() or "My K-pop model", "epochs": epochs, "songs": len(files)}
                job_id = runner.submit(
                    owner_id=user.id,
                    kind=kpop.TRAIN_JOB_KIND,
                    params=params,
                    fn=lambda ctx: kpop.run_training_job(
                        ctx,
                        files=files,
                        storage=store,
                        epochs=epochs,
                        max_seconds=minutes * 60.0,
                        resume=resume_bytes,
                        limits=limits,
                    ),
                )
            except StudioError as exc:
                st.error(str(exc))
            else:
                st.toast(f"Training started (job {job_id}).")
                st.rerun()
