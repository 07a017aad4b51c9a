"""Exercises in the video's order: write a part of the GPT, check it, train with it.
Run `python -m exercises --help`; docs/exercises.md says how."""
