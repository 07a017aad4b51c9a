"""Data files: getting a text to prepare, and reading prepared data back.

prepare.py writes a data folder (train.bin, val.bin, vocab.json); this module gets the text it
encodes (the download of tiny-shakespeare, checked by size and sha256; a local file, checked to
be UTF-8 text of a sane size) and reads the folder back (load_vocab, load_data), checking that
the bins agree with vocab.json.
"""

import errno
import hashlib
import json
import os
import shlex
import sys
import time
import unicodedata
import urllib.parse
from http import HTTPStatus
from pathlib import Path

import numpy as np
from tqdm import tqdm

from config import PRESETS, TrainConfig
from machinery.cli import UserError, folders_inside, unless_a_typo, write_atomically

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


SHAKESPEARE_BYTES = 1_115_394


SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


DEFAULT_DATA_DIR = TrainConfig.data_dir  # where prepare.py writes tiny-shakespeare: where train.py reads


MAX_BYTES = 256 << 20  # 256 MiB of text: 2.7 times enwik8, the usual large character-level benchmark
MIN_CHARS = 1000  # below this the 10% validation split is too small to mean anything


VOCAB_FORMAT = "char-gpt-vocab"


VOCAB_VERSION = 1


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url, dest, sha256, size, tries=3, timeout=30):
    """Stream `url` into `dest`, but only if it matches the expected size and sha256.

    The bytes go to a temp file first; only a verified file is renamed into
    place, so a failed or tampered download writes nothing.
    """
    dest = Path(dest)
    if dest.exists():
        if dest.stat().st_size == size and sha256_of(dest) == sha256:
            print(f"{dest} is already here and verified; not downloading it again")
            return
        # our own downloads are atomic, so a file that fails the check is someone else's
        raise UserError(f"{dest} exists but is not the expected file — move it away, "
                        f"or encode it with --input {shlex.quote(str(dest))}")
    try:
        address = urllib.parse.urlsplit(url)
        address.port  # (raises for a port that is not a number)
    except ValueError:  # http://[bad
        address = None
    if not address or address.scheme not in ("http", "https") or not address.netloc:  # no try would ever succeed
        raise UserError(f"{url!r} is not an address to download from (http:// or https://) — fix --url, "
                        f"or pass a local copy with --input FILE")
    import requests  # only here: train.py and sample.py import this file too, and start 0.1 s sooner without it
    made = make_dir(dest.parent)

    def fetch(f):
        h = hashlib.sha256()
        with requests.get(url, stream=True, timeout=timeout) as r:
            r.raise_for_status()
            with tqdm(total=size, unit="B", unit_scale=True, desc="download") as bar:
                for chunk in r.iter_content(chunk_size=1 << 16):
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
                    if f.tell() > size:  # (a server that never stops would fill the disk)
                        raise UserError(f"{url} sent more than the expected file's {size:,} bytes, so it is another "
                                        f"file; the download was stopped, and nothing was written — check --url, or "
                                        f"pass a good copy with --input FILE")
        if f.tell() != size or h.hexdigest() != sha256:
            raise UserError(
                f"the file from {url} failed verification ({f.tell():,} bytes, sha256 "
                f"{h.hexdigest()[:12]}…, expected {size:,} bytes, {sha256[:12]}…); nothing "
                f"was written — try again later, or pass a good copy with --input FILE")

    try:
        for attempt in range(1, tries + 1):
            try:
                write_atomically(dest, fetch)
                return
            except requests.RequestException as e:
                status = getattr(e.response, "status_code", None)
                if status in (401, 403, 404, 410):  # no such file for us there: another try would get the same
                    reason = e.response.reason or HTTPStatus(status).phrase  # (a server may send no phrase)
                    raise UserError(f"{url} answered {status} ({reason}) — fix --url, or pass a local copy with "
                                    f"--input FILE") from None
                if attempt == tries:
                    raise UserError(
                        f"could not download {url} ({type(e).__name__}) after {tries} tries — "
                        f"check your connection, or pass a local copy with --input FILE") from None
                wait = 2 ** (attempt - 1)  # 1 s, then 2 s
                print(f"download failed ({type(e).__name__}); trying again in {wait} s", file=sys.stderr)
                time.sleep(wait)
    except BaseException:  # nothing downloaded: leave no empty folder behind either
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty after all: someone else's now
                break
        raise


def make_dir(path, fix="choose another --out_dir"):
    """mkdir -p, with a one-line error for a path that cannot be a folder (fix: what to do then).
    -> the folders it created, innermost first (so a failure can remove them again)."""
    path = Path(path)
    made = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way, a path under a file, a place we may not write
        raise UserError(f"cannot make the folder {path} ({e.strerror}) — {fix}") from None
    return made


def read_text(path):
    """Read a UTF-8 text file -> (text, sha256 of its bytes), with a clear error for anything else.
    Line ends become "\\n" and a leading byte-order mark goes, so that no editor's habit enters the vocabulary."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a file — give the path of one text file to --input")
    if path.name in ("train.bin", "val.bin", "vocab.json") and written_by_prepare(path.parent):
        raise UserError(f"{path} is what prepare.py wrote, not a text — give --input the text file it was prepared "
                        f"from")
    if not path.exists():
        if str(path) == "-":  # (the Unix habit for "read standard input")
            raise UserError("no such file: - — to read from a pipe, give --input /dev/stdin")
        raise UserError(f"no such file: {path} — "
                        + unless_a_typo(path, "--input", os.path.isfile, "check the path you gave to --input"))
    try:
        raw = read_at_most(path, MAX_BYTES)  # also from a pipe: --input /dev/stdin < my.txt
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}) — check its permissions") from None
    if len(raw) > MAX_BYTES:  # (an endless input, such as /dev/zero, stops here too)
        raise UserError(f"{path} is over {MAX_BYTES >> 20} MiB, more than this repo prepares (it reads the whole "
                        f"text into memory, about 7 bytes a character of plain text at the peak) — give a smaller "
                        f"text, or a piece of it")
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):  # UTF-32's byte-order mark (UTF-16's, and more)
        raise UserError(f"{path} is UTF-32, not UTF-8 — re-save it as UTF-8, for example: {to_utf8(path, 'utf-32')}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # the byte-order mark of UTF-16 (Notepad's "Unicode")
        raise UserError(f"{path} is UTF-16, not UTF-8 — re-save it as UTF-8, for example: {to_utf8(path, 'utf-16')}")
    if b"\x00" in raw:
        if without_bom := wide_encoding(raw):  # UTF-16 or 32 with no byte-order mark: many bytes NUL
            raise UserError(f"{path} looks like {without_bom[:6].upper()} ({without_bom}), not UTF-8 — re-save it "
                            f"as UTF-8, for example: {to_utf8(path, without_bom)}")
        raise UserError(f"{path} contains NUL bytes, so it looks binary — give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{path} is not valid UTF-8 (byte {e.start:,}, line {line}) — re-save it as UTF-8; from "
                        f"Windows-1252 (most older Windows text), for example: {to_utf8(path, 'cp1252')}") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write first: a marker, not text
    text, ends = newlines(text)
    if ends:
        print(f"note: {path} has {ends}")
    if len(text) < MIN_CHARS:
        characters = "character" if len(text) == 1 else "characters"
        raise UserError(f"{path} has only {len(text):,} {characters}, too few to split into train and val — "
                        f"give at least {MIN_CHARS:,}")
    return text, hashlib.sha256(raw).hexdigest()


def read_at_most(path, limit):
    """The bytes of path, read in pieces and stopped once past limit: at most limit + 1 of them."""
    pieces, size = [], 0
    with open(path, "rb") as f:
        while size <= limit and (piece := f.read(min(1 << 24, limit + 1 - size))):
            pieces.append(piece)
            size += len(piece)
    return b"".join(pieces)


def newlines(text):
    r"""Line ends as the model reads them -> (text, what was read as newlines, or ""): Windows' \r\n
    as one \n (else "\r" would be a character the model must learn to write), and old Macintosh \r alone, in a
    text with no \n anywhere, as \n. A lone \r in a text with \n is a character, kept."""
    if "\r\n" in text:
        return text.replace("\r\n", "\n"), "Windows line ends (\\r\\n); each is read as one newline"
    if "\r" in text and "\n" not in text:
        return text.replace("\r", "\n"), "old Macintosh line ends (\\r); each is read as a newline"
    return text, ""


def wide_encoding(raw):
    """"utf-16le" or "utf-16be" (or UTF-32's, "utf-32le" or "utf-32be") where raw reads as text in it, else None.
    Mostly ASCII (or Latin), such a text has NUL bytes in set places: UTF-16's every other byte, UTF-32's two
    highest bytes of four (UTF-16 of ASCII has NUL as every fourth byte too, but not as the third)."""
    for order, nuls_at, step in (("utf-32le", (3, 2), 4), ("utf-32be", (0, 1), 4), ("utf-16le", (1,), 2),
                                 ("utf-16be", (0,), 2)):
        if len(raw) >= 4 and all(raw[at::step].count(0) > 0.9 * (len(raw) // step) for at in nuls_at):
            try:
                raw.decode(order)
                return order
            except UnicodeDecodeError:
                pass
    return None


def to_utf8(path, encoding):
    """The command that re-saves a text in another encoding as UTF-8, beside itself (a-utf8.txt)."""
    utf8 = path.with_name(f"{path.stem}-utf8{path.suffix}")
    return f"iconv -f {encoding} -t utf-8 {shlex.quote(str(path))} > {shlex.quote(str(utf8))}"


def char_label(c):
    """A character for a message: beyond ASCII, with its code point and name, because some are
    invisible alone (a combining accent) and some look like others (Cyrillic а, Latin a)."""
    if c.isascii():
        return repr(c)
    name = unicodedata.name(c, "")
    return f"{c!r} (U+{ord(c):04X}{' ' + name if name else ''})"


def not_in_vocabulary(text, unknown, chars=()):
    """The line for a prompt with characters the model never saw. A backslash before an n is likelier a new line
    typed in a shell's quotes ("ROMEO:\\nBut", as --help shows a default) than a backslash meant; an accent apart
    from its letter (e + U+0301), where the text trained on has the two as one character (é), is a way of typing."""
    typed = ""
    if "\\" in unknown and "\\n" in text:
        typed = (" (in quotes, \\n is a backslash and an n: type a new line as $'ROMEO:\\nBut' in bash, or, in "
                 "sample.py, use --prompt_file)")  # (lessons.plot's --prompt has no file of its own)
    for form, how in (("NFC", "as one character each"), ("NFD", "as a letter and its accent")):
        if (retyped := unicodedata.normalize(form, text)) != text and set(retyped) <= set(chars):
            typed = (f" (or type the prompt's accented letters {how}, as its training text has them; "
                     f"unicodedata.normalize('{form}', prompt) does that in Python)")
    shown = " ".join(char_label(c) for c in unknown[:20])  # (a prompt in another script may have thousands)
    more = f" and {len(unknown) - 20:,} more" if len(unknown) > 20 else ""
    return f"the prompt has characters not in the model's vocabulary: {shown}{more} — leave them out{typed}"


def is_default_data_dir(path):
    """Whether path is where `python prepare.py` puts tiny-shakespeare, and train.py looks first."""
    return Path(path).resolve() == Path(DEFAULT_DATA_DIR).resolve()


def own_data_dir(path):
    """Where --input's text goes by default: data/<its file's name, without the extension>. A name that would be
    tiny-shakespeare's folder (a shakespeare.txt of other text: the complete works, say) gets data/<name>-own:
    `python train.py` alone reads that folder, and only tiny-shakespeare's exact bytes go to it."""
    folder = f"data/{Path(path).stem}"
    return f"{folder}-own" if folder.lower() == DEFAULT_DATA_DIR.lower() else folder


def not_shakespeare_note(path, sha):
    """A note for a text named like tiny-shakespeare's file (input.txt) or folder (shakespeare.txt) whose bytes are
    not it (a copy cut short, or edited): it is prepared as a text of the user's own, and `python train.py` alone
    would not find it. Else None."""
    if Path(path).name == "input.txt":
        like = "file"
    elif Path(path).stem.lower() == Path(DEFAULT_DATA_DIR).name.lower():
        like = "folder"
    else:
        return None
    if sha == SHAKESPEARE_SHA256:
        return None
    return (f"note: {path} is named like tiny-shakespeare's {like}, but its bytes differ (sha256), so it is prepared "
            f"as a text of your own: train it with the command below, not with `python train.py` alone")


def how_to_prepare(data_dir, vocab=None):
    """The command that prepares data_dir: tiny-shakespeare's download where the folder is for it (the default
    one, or one whose vocab.json says it was prepared from it), else your text, which must be given again."""
    folder = shlex.quote(str(data_dir))
    shakespeare = vocab.get("source_sha256") == SHAKESPEARE_SHA256 if vocab else is_default_data_dir(data_dir)
    if not shakespeare:
        return f"python prepare.py --input YOUR_TEXT_FILE --out_dir {folder}"
    return "python prepare.py" + ("" if is_default_data_dir(data_dir) else f" --out_dir {folder}")


def offline_hint(command):
    """For a command that downloads: how to run it without a network."""
    return "" if "--input" in command else " (offline: with --input and your copy of its input.txt)"


def again(data_dir, vocab=None):
    """The way to make a damaged prepared folder whole: prepare.py writes over data from the same text."""
    command = how_to_prepare(data_dir, vocab)
    return f"run `{command}` again{offline_hint(command)}"


def load_vocab(data_dir):
    """Read vocab.json from a prepared data directory (the reader of what prepare() writes)."""
    path = Path(data_dir) / "vocab.json"
    if Path(data_dir).is_file():
        if written_by_prepare(Path(data_dir).parent):  # its train.bin, say
            raise UserError(f"--data_dir {data_dir} is a file of a prepared folder — give the folder: --data_dir "
                            f"{shlex.quote(str(Path(data_dir).parent))}")
        name = shlex.quote(str(data_dir))  # a text given where its prepared folder belongs
        raise UserError(f"--data_dir {name} is a file, not a prepared folder — prepare it first with `python "
                        f"prepare.py --input {name}`, then give the folder that prints")
    if not path.is_file() and (Path(data_dir) / "train.bin").is_file():  # nanoGPT's (with meta.pkl), say
        raise UserError(f"{data_dir} holds a train.bin but no vocab.json — if prepare.py stopped before its end, "
                        f"{again(data_dir)}; if it is another tool's data (nanoGPT's?), "
                        f"prepare the text into a new folder, with --out_dir")
    if not path.is_file() and any((Path(data_dir) / name).is_file() for name in ("best.pt", "latest.pt")):
        raise UserError(f"{data_dir} holds a training run, not prepared data — give --data_dir the folder prepare.py "
                        f"wrote (data/shakespeare by default)")
    if not path.is_file():
        if inside := folders_inside(data_dir, is_prepared):  # data, given for data/shakespeare
            fix = f"give --data_dir a prepared folder inside it: {inside}"
        else:
            command = how_to_prepare(data_dir)
            fix = unless_a_typo(data_dir, "the prepared folder beside it, --data_dir", is_prepared,
                                f"run `{command}` first{offline_hint(command)}, or check the path")
        raise UserError(f"no prepared data in {data_dir} (no vocab.json) — {fix}")
    vocab = read_json(path)
    if not isinstance(vocab, dict) or vocab.get("format") != VOCAB_FORMAT:
        # prepare.py would refuse to write over it too (check_out_dir): it cannot tell whose it is
        raise UserError(f"{path} was not written by prepare.py — move it away, then run `{how_to_prepare(data_dir)}`")
    version = vocab.get("version", VOCAB_VERSION)  # (a missing one is named with the other missing keys below)
    if type(version) is not int or version != VOCAB_VERSION:  # another prepare.py's: its keys may mean other things
        raise UserError(f"{path} is vocab.json version {version!r}, where this prepare.py writes version "
                        f"{VOCAB_VERSION} — move it away, then run `{how_to_prepare(data_dir)}`")
    keys = ("chars", "vocab_size", "dtype", "train_tokens", "val_tokens", "version")
    if missing := [key for key in keys if key not in vocab]:
        raise UserError(f"{path} has no {' or '.join(missing)} (edited by hand?) — move it away, then run "
                        f"`{how_to_prepare(data_dir)}`")
    if bad := [key for key, fits in vocab_checks(vocab).items() if not fits]:
        raise UserError(f"{path} has a {' and a '.join(bad)} that prepare.py would not write (edited by hand?) — "
                        f"move it away, then run `{how_to_prepare(data_dir)}`")
    return vocab


def vocab_checks(vocab):
    """{key: whether vocab.json's value is one prepare.py could have written}: a hand edit that got
    past these would fail later, far from its cause (a vocab_size over the characters, at sampling)."""
    chars = vocab["chars"]
    chars_fit = (isinstance(chars, list) and len(chars) > 0 and all(isinstance(c, str) and len(c) == 1 for c in chars)
                 and chars == sorted(set(chars)))  # each once, in order: another order decodes to other text

    def count(value, least=0):
        return type(value) is int and value >= least  # (not a bool, a float or a string of digits)

    return {"chars": chars_fit,
            "vocab_size": count(vocab["vocab_size"]) and (not chars_fit or vocab["vocab_size"] == len(chars)),
            "dtype": vocab["dtype"] in ("uint16", "uint32"),
            "train_tokens": count(vocab["train_tokens"], 1),  # (prepare.py refuses a text too short for both)
            "val_tokens": count(vocab["val_tokens"], 1)}


def written_by_prepare(folder):
    """Whether folder's vocab.json is prepare.py's (its format), not a file of the same name of somebody else's."""
    try:
        vocab = read_json(Path(folder) / "vocab.json")
    except OSError:  # none, or unreadable
        return False
    return isinstance(vocab, dict) and vocab.get("format") == VOCAB_FORMAT


def read_json(path):
    """path's JSON, or None where it holds no JSON (bytes that are not UTF-8, or lists in lists thousands deep,
    past Python's recursion limit, too). An OSError is the caller's."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        return None


def is_prepared(folder):
    return os.path.isfile(Path(folder) / "vocab.json")  # (False, not an error, if unreadable)


def load_data(data_dir):
    """-> (vocab dict, {'train': ids, 'val': ids}), the ids memory-mapped (read once here, to check them)."""
    vocab = load_vocab(data_dir)
    splits = {}
    for split in ("train", "val"):
        path = Path(data_dir) / f"{split}.bin"
        dtype = np.dtype(vocab["dtype"])
        expected = vocab[f"{split}_tokens"] * dtype.itemsize
        if path.is_dir():
            raise UserError(f"{path} is a folder, where prepare.py writes the ids — move it away, then "
                            f"{again(data_dir, vocab)}")
        if not path.is_file():
            raise UserError(f"{path} is missing — {again(data_dir, vocab)}")
        size = path.stat().st_size
        if size % dtype.itemsize:
            raise UserError(f"{path} has {size:,} bytes, not a whole number of {dtype.name} tokens, so it is "
                            f"damaged — {again(data_dir, vocab)}")
        if size != expected:
            raise UserError(f"{path} has {size // dtype.itemsize:,} tokens, but vocab.json says "
                            f"{vocab[f'{split}_tokens']:,} — {again(data_dir, vocab)}")
        splits[split] = np.memmap(path, dtype=dtype, mode="r")
        largest = splits[split].max() if len(splits[split]) else 0  # one pass, about 1 ms per MB
        if largest >= vocab["vocab_size"]:
            raise UserError(f"{path} holds token id {largest}, but the vocabulary has only "
                            f"{vocab['vocab_size']} characters — the data is damaged; {again(data_dir, vocab)}")
    return vocab, splits


def check_out_dir(out_dir, source_sha256):
    """Refuse to overwrite data that was prepared from a different text (an edited one too: a run
    trained on the old data may still need it), and new data in a training run's folder (its checkpoints)."""
    from machinery.checkpoint import holds_a_run  # (here, not above: checkpoint.py imports this module)
    if is_prepared(out_dir):
        vocab = load_vocab(out_dir)
        if vocab.get("source_sha256") != source_sha256:
            raise UserError(f"{out_dir} already holds data prepared from a different text ({vocab.get('source')}; "
                            f"an edited file counts as different) — choose another --out_dir, or move {out_dir} "
                            f"away first")
    elif holds_a_run(out_dir):
        raise UserError(f"{out_dir} holds a training run (its checkpoints) — prepare the data into a folder of its "
                        f"own: leave --out_dir out, and prepare.py picks data/ and the text's name")


def check_bins(out_dir, bins, vocab):
    """Refuse to overwrite bins without a vocab.json beside them, unless they hold what bins
    {name: ids} would write: prepare.py's own, from a run stopped before vocab.json, its last file.
    Others are another tool's (nanoGPT's, say). Ours, from this text (check_out_dir), are refused where
    they were encoded otherwise: by a prepare.py changed since (a fork's lowercasing, say)."""
    if is_prepared(out_dir):
        old = load_vocab(out_dir)
        if any(old[key] != vocab[key] for key in ("chars", "train_tokens", "val_tokens")):
            raise UserError(f"{out_dir} already holds this text encoded another way ({len(old['chars'])} "
                            f"characters in its vocabulary, {len(vocab['chars'])} now: prepare.py changed since?), "
                            f"which a run trained on it may still need — choose another --out_dir, or move "
                            f"{out_dir} away first")
        return
    def differs(path, ids):  # (the size first: another tool's bin may be many GB, too large to read in)
        return path.stat().st_size != ids.nbytes or path.read_bytes() != ids.tobytes()
    other = [name for name, ids in bins.items()
             if (Path(out_dir) / name).is_file() and differs(Path(out_dir) / name, ids)]
    if other:
        raise UserError(f"{out_dir} holds {' and '.join(other)}, with other ids and no vocab.json (another tool's "
                        f"data, such as nanoGPT's?) — choose another --out_dir, or move them away first")


def write_prepared(out_dir, bins, vocab):
    """Write the bins ({name: ids}), then vocab.json (the dict vocab), each atomically. vocab.json
    goes last: its presence means the bins beside it are complete. Another tool's bins are not
    written over (check_bins); a full disk, or a folder we may not write in, is one line."""
    # "replace": the bytes of a file name that are not UTF-8 (a Latin-1 café.txt) become "?" in vocab.json's source
    payload = json.dumps(vocab, ensure_ascii=False, indent=1).encode("utf-8", "replace")
    check_bins(out_dir, bins, vocab)
    try:
        for name, ids in bins.items():
            write_atomically(Path(out_dir) / name, lambda f: f.write(ids.tobytes()))  # (called at once, here)
        write_atomically(Path(out_dir) / "vocab.json", lambda f: f.write(payload))
    except OSError as e:
        full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # (not a read-only folder, which space won't fix)
        space = "free some disk space, or " if full else ""
        raise UserError(f"cannot write in {out_dir} ({e.strerror}) — {space}choose another --out_dir") from None


def is_whole(data_dir):
    """Prepared, and the bins agree with vocab.json: load_data finds nothing to fix."""
    try:
        load_data(data_dir)
        return True
    except UserError:
        return False


MAX_PROMPT_CHARS = 10_000_000  # the model reads only a prompt's last block_size: past this, a wrong file (/dev/zero)


def read_prompt_file(path):
    try:
        # -sig: without the byte-order mark some editors write; newline="": line ends as newlines() reads them
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read(MAX_PROMPT_CHARS + 1)
    except FileNotFoundError:
        if path == "-":
            raise UserError("no such file: - — to read from a pipe, give --prompt_file /dev/stdin") from None
        raise UserError(f"prompt file {path} does not exist — check the path") from None
    except UnicodeDecodeError as e:
        raise UserError(f"prompt file {path} is not UTF-8 text (byte {e.start}) — save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"cannot read prompt file {path}: {e.strerror} — check the path and permissions") from None
    if len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"prompt file {path} is over {MAX_PROMPT_CHARS:,} characters — the model reads only its last "
                        f"block_size: give a shorter one")
    if "\x00" in text:  # (a train.bin of small ids decodes: its bytes are ASCII's control characters and NUL)
        raise UserError(f"prompt file {path} contains NUL bytes, so it looks binary — give a UTF-8 text file")
    return newlines(text)[0]  # (after the length is checked: a long file of \r\n is not cut short unsaid)


def run_dir_for(data_dir):
    """A run folder of its own for a prepared folder's text: out/NAME, or out/NAME-2 and on where that holds
    something already (a run of an earlier version of the text, say, which train.py would refuse to write over)."""
    name = Path(data_dir).resolve().name
    run_dir = Path("out") / name
    for n in range(2, 100):
        if not (run_dir.is_dir() and any(run_dir.iterdir())):
            break
        run_dir = Path("out") / f"{name}-{n}"
    return run_dir


def next_command(data_dir, passes=14):
    """What prepare.py prints last: the train.py command; for data outside the default folder, with
    its --data_dir and a run folder of its own (out/ may hold another text's run). On a small text,
    the CPU preset's steps would read it dozens of times and learn it by heart: then the command asks for about
    `passes` passes instead, with dropout 0.1, and a note says why (on a 50,000-character text,
    that scored val 1.66 where the preset's 800 steps scored 1.80 at best, then 3.14: docs/training.md).
    Its evaluations read the val split about 4 times, not the preset's 50 batches (20 times for that text's).
    -> lines to print"""
    if is_default_data_dir(data_dir):  # where train.py looks by default
        return ["next: python train.py"]
    command = shlex.join(["python", "train.py", "--data_dir", str(data_dir), "--out_dir", str(run_dir_for(data_dir))])
    cpu = PRESETS["shakespeare-cpu"]
    per_step = cpu["batch_size"] * cpu["block_size"]  # tokens a step reads
    vocab = load_vocab(data_dir)
    train_tokens = vocab["train_tokens"]
    preset_passes = cpu["max_iters"] * per_step / train_tokens
    if preset_passes <= 2 * passes:
        return [f"next: {command}"]
    steps = max(50, round(passes * train_tokens / per_step / 50) * 50)
    # a run this short would spend a third of itself (or all of it) in the preset's warmup: a tenth will do
    warmup = f" --warmup_iters {steps // 10}" if steps < 3 * cpu["warmup_iters"] else ""
    # an evaluation of the preset's 50 batches would read a small val split dozens of times: 4 will do
    eval_iters = min(cpu["eval_iters"], max(10, -(-4 * vocab["val_tokens"] // per_step)))
    # 4 or 5 evaluations, at an interval that divides the run: 250 // 4 = 62 would evaluate at 248, then at 250
    interval = steps // 4 if steps % 4 == 0 else steps // 5
    return [f"note: the text is small ({train_tokens:,} training characters): the CPU preset's {cpu['max_iters']} "
            f"steps would read it {preset_passes:.0f} times and learn it by heart, so the command below reads it "
            f"about {steps * per_step / train_tokens:.0f} times, with dropout (docs/training.md, Overfitting)",
            f"next: {command} --max_iters {steps} --eval_interval {interval} --eval_iters {eval_iters} "
            f"--dropout 0.1{warmup}"]
