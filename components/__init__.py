"""Reusable Streamlit UI pieces. They return plain values; all logic lives in ``core``."""
