"""The lessons: programs that show what the GPT does, in the order of "Let's build GPT".

    buildup.py    the ladder: from a table of character pairs to the GPT, one idea per rung
    inside.py     look inside a forward pass: every tensor's shape, the attention weights
    babygpt.py    a GPT small enough to draw: every state and its next-bit probabilities
    plot.py       the loss curves, the attention weights, the embeddings; explore.html, a page to play with

Each runs as `python -m lessons.NAME`; `--help` lists its options.
"""
