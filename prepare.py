"""Turn a text file into training data for a character-level GPT.

    python prepare.py                      # download tiny-shakespeare, then encode it
    python prepare.py --input my.txt       # or encode any UTF-8 text of your own

A character-level model needs no tokenizer library: every distinct character
in the text gets an integer id (its rank in sorted order), and the text becomes
one long array of ids. We write three files into the output directory (beside
the downloaded input.txt, when there is a download):

    train.bin   the first 90% of the ids, raw integers in the machine's byte order
    val.bin     the last 10%, for measuring how well the model generalises
    vocab.json  the characters in id order, the integer dtype, the counts and
                the sha256 of the source text, so the bins can always be decoded

Read it top to bottom: the tokenizer (vocab_and_ids for a whole text; encode and decode with
a vocabulary; start_char, what sample.py starts from without a prompt), then prepare(), which
makes the three files. Getting the text (the download, the encoding checks), writing the files
safely and reading them back (load_data) are in machinery/data.py.
"""

import sys
import time
from pathlib import Path

import numpy as np

# a mistake the user can fix raises UserError; run_cli prints it as one line, `error: ...`, and exits with 2
from machinery.cli import ArgumentParser, HelpFormatter, UserError, run_cli
from machinery.data import (DEFAULT_DATA_DIR, SHAKESPEARE_BYTES, SHAKESPEARE_SHA256, SHAKESPEARE_URL, VOCAB_FORMAT,
                            VOCAB_VERSION, check_out_dir, download, is_whole, make_dir, next_command,
                            not_in_vocabulary, not_shakespeare_note, own_data_dir, read_text, write_prepared)

TRAIN_FRACTION = 0.9  # the first 90% of the text trains, the last 10% measures


# ----------------------------------------------------------------------------
# The tokenizer: characters <-> ids


def vocab_and_ids(text):
    """Return (chars, ids): the sorted distinct characters and the text as their ids.

    chars = sorted(set(text)) is the vocabulary, as in the video. ids = encode(text, chars), with
    encode below (which sample.py uses too, for a prompt), would loop in Python over a million
    characters; numpy does it here instead: UTF-32 gives one 32-bit code point per character, and
    a table indexed by code point gives each character's id.
    """
    chars = sorted(set(text))  # every distinct character, in code-point order
    dtype = np.uint16 if len(chars) <= 2**16 else np.uint32  # 2 bytes an id while every id fits in them
    # code point -> id, for every code point up to the largest: at most 1,114,112 of them, a few MiB
    id_of = np.zeros(ord(chars[-1]) + 1, dtype=dtype)
    id_of[[ord(c) for c in chars]] = np.arange(len(chars))
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (N,) one per character
    ids = id_of[codepoints]  # (N,) each character's id, made in the ids' own dtype
    return chars, ids


def encode(text, chars):
    """A prompt's characters -> ids, naming any character the model has never seen."""
    stoi = {c: i for i, c in enumerate(chars)}
    unknown = sorted(set(text) - stoi.keys())
    if unknown:
        raise UserError(not_in_vocabulary(text, unknown, chars))  # (machinery/data.py: names each one)
    return [stoi[c] for c in text]


def decode(ids, chars):
    return "".join(chars[i] for i in ids)


def start_char(chars):
    """What a model writes after when given no prompt (sample.py): a newline (the start of a line),
    or the vocabulary's first character for a text that has none."""
    return "\n" if "\n" in chars else chars[0]


def prepare(text, out_dir, source_sha256, source_name):
    """Encode `text`, split it 90/10 and write train.bin, val.bin and vocab.json. -> the vocab dict"""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, source_sha256)  # a folder prepared from another text is refused, never overwritten
    make_dir(out_dir)

    t0 = time.perf_counter()
    chars, ids = vocab_and_ids(text)
    n_train = int(len(ids) * TRAIN_FRACTION)
    train, val = ids[:n_train], ids[n_train:]
    seconds = time.perf_counter() - t0

    vocab = {
        "format": VOCAB_FORMAT,
        "version": VOCAB_VERSION,
        "chars": chars,
        "vocab_size": len(chars),
        "dtype": np.dtype(ids.dtype).name,
        "train_tokens": len(train),
        "val_tokens": len(val),
        "source": source_name,
        "source_sha256": source_sha256,
    }
    # the ids as raw uint16 (or uint32) bytes, which train.py maps from disk (machinery/data.py's load_data);
    # vocab.json last, once they are whole
    write_prepared(out_dir, {"train.bin": train, "val.bin": val}, vocab)

    print(f"characters: {len(ids):,}, vocabulary: {len(chars):,} ({vocab['dtype']}), "
          f"encoded in {seconds:.2f} s")
    more = f" and {len(chars) - 100:,} more" if len(chars) > 100 else ""  # (a big vocabulary would fill the screen)
    print(f"the vocabulary, in id order: {''.join(chars[:100])!r}{more}")
    print(f"train: {len(train):,} tokens, val: {len(val):,} tokens -> {out_dir}/")
    return vocab


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=HelpFormatter)
    parser.add_argument("--input", metavar="FILE",
                        help="encode this UTF-8 text file instead of downloading tiny-shakespeare")
    parser.add_argument("--out_dir", help=f"where to write the bins (default: {DEFAULT_DATA_DIR} "
                        "for tiny-shakespeare, else data/<the input file's name without its extension>, -own added to "
                        "one that would be data/shakespeare)")
    parser.add_argument("--url", default=SHAKESPEARE_URL,
                        help="where to download tiny-shakespeare from (a mirror must serve the same bytes)")
    args = parser.parse_args(argv)
    if args.input is not None and args.url != SHAKESPEARE_URL:  # (a file given is read, never downloaded)
        raise UserError("--input and --url both given — --url is where the download comes from: drop one of them")

    if args.input is not None:
        path = Path(args.input)
        text, sha = read_text(path)  # one read gives both the text and its hash
        # tiny-shakespeare given by hand lands where the download would have gone,
        # so `python train.py` finds it without extra flags; other text goes to data/<its file's name> (or, where
        # that is data/shakespeare, to data/shakespeare-own: machinery/data.py's own_data_dir)
        default_dir = DEFAULT_DATA_DIR if sha == SHAKESPEARE_SHA256 else own_data_dir(path)
        if note := not_shakespeare_note(path, sha):  # (an input.txt cut short, say)
            print(note)
    else:
        default_dir = DEFAULT_DATA_DIR
        path = Path(args.out_dir or default_dir) / "input.txt"
        check_out_dir(path.parent, SHAKESPEARE_SHA256)  # a folder prepared from another text is refused
        if is_whole(path.parent):  # from a download, or from a copy given with --input: no network needed
            print(f"{path.parent} already holds tiny-shakespeare, prepared and whole; nothing to do")
            print(*next_command(path.parent), sep="\n")
            return 0
        download(args.url, path, SHAKESPEARE_SHA256, SHAKESPEARE_BYTES)
        text, sha = read_text(path)
    out_dir = args.out_dir or default_dir
    prepare(text, out_dir, sha, path.name)
    print(*next_command(out_dir), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
