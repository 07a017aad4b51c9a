"""The plumbing every script shares: one kind of user error and how it is shown, argument
parsing with flags made from config dataclasses, the device, and crash-safe file writes.

A mistake the user can fix raises UserError; run_cli turns it into one line,
`error: what went wrong — what to do`, on stderr and exit code 2, never a traceback.
"""

import argparse
import codecs
import difflib
import errno
import os
import re
import shlex
import sys
import tempfile
import time
import typing
from dataclasses import fields
from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix. The message reads 'what went wrong — what to do'."""


REPO = Path(__file__).resolve().parent.parent  # the five scripts' folder, where data/ and out/ are meant to be
PATH_FLAG = r"--\w*(?:dir|input|checkpoint|file|save|dot|anchor)"  # the flags that take a path


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag raises UserError instead of printing usage and exiting."""

    def __init__(self, **kwargs):
        run_as = getattr(sys.modules["__main__"], "__spec__", None)  # set by `python -m folder.name`
        if run_as is not None and "prog" not in kwargs:  # (else argparse says "usage: __main__.py" or "speed.py")
            kwargs["prog"] = f"python -m {run_as.name.removesuffix('.__main__')}"
        super().__init__(allow_abbrev=False, **kwargs)  # --max must not quietly mean --max_iters
        self.words = []  # the command line parse_args was given
        self.refused = {}  # flags another script has, left out on purpose: {flag: why, and what to do}
        if sys.version_info < (3, 14):  # (3.14's argparse does this itself)
            # argparse took -1e-4 for a flag, so `--min_lr -1e-4` said "expected one argument"; read such
            # a number as a value, and the config's own check says what is wrong with it
            self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

    def parse_args(self, args=None, namespace=None):
        self.words = list(sys.argv[1:] if args is None else args)  # (for a command's flag given before it, below)
        try:
            args, unknown = self.parse_known_args(self.words, namespace)
        except UserError:  # (check --data_dir X: X was read as check's number, and said to be no number)
            self.refuse_a_flag_of_another_command()  # that flag, the likelier mistake, is named instead
            raise
        actions = list(self._actions)
        for a in self._actions:  # after a subcommand (bench.speed sample ...), its flags are the valid ones
            if isinstance(a, argparse._SubParsersAction) and getattr(args, a.dest, None) in a.choices:
                actions += a.choices[getattr(args, a.dest)]._actions
        for a in actions:
            if not any(re.fullmatch(PATH_FLAG, s) for s in a.option_strings):
                continue
            value = getattr(args, a.dest, None)
            if value == "":  # --out_dir "$DIR" with DIR unset: an empty path, which would mean this folder
                raise UserError(f"{a.option_strings[0]} is empty — give a path (an unset \"$VARIABLE\" gives an "
                                f"empty one)")
            # the shell turns ~ into your home folder in `--out_dir ~/runs`, but not in `--out_dir=~/runs` or in a
            # quoted "~/runs", which would make a folder named "~" here: do what it would have done
            if isinstance(value, str) and re.match(r"~(/|$)", value):
                setattr(args, a.dest, os.path.expanduser(value))
        if unknown:
            chosen = next((getattr(args, a.dest, None) for a in self._actions
                           if isinstance(a, argparse._SubParsersAction)), None)
            flag = unknown[0].split("=")[0]
            for parser in (self, self.commands().get(chosen)):  # (bench.speed train's --out_dir: train.py's)
                if parser is not None and flag in parser.refused:
                    raise UserError(f"{flag} {parser.refused[flag]}")
            if unknown[0] in self.words:  # (as typed: argparse hands back the words it could not place)
                self.refuse_a_flag_before_its_command(self.words.index(unknown[0]))
            self.refuse_another_commands_flag(flag, chosen)
            flags = sorted({s for a in actions for s in a.option_strings if s.startswith("--")})
            guess = closest_flag(unknown[0].split("=")[0], flags)
            guess = flag_for_a_path(unknown[0], flags) or guess  # python prepare.py notes.txt
            # a likely typo gets its fix alone; the whole list (40 flags for train.py) only without one
            hint = f"did you mean {guess}? (--help lists every flag)" if guess else f"valid flags: {' '.join(flags)}"
            shown = unknown[0] if unknown[0] == unknown[0].strip() else repr(unknown[0])  # ('--lr ', not --lr)
            raise UserError(f"unknown argument {shown} — {hint}")
        return args

    def _check_value(self, action, value):
        """A value not among the choices, but one typo from one of them, gets that one alone."""
        choices = action.choices
        at = self.words.index(value) if value in self.words else 0
        if isinstance(action, argparse._SubParsersAction) and value not in choices and at:  # --device cpu train
            self.refuse_a_flag_before_its_command(at - 1)  # (argparse took "cpu" for the command)
        # words only: 12 is not a typo of 2, and a list given as a whole has no one word to fix
        if (choices is not None and value not in choices and isinstance(value, str)
                and all(isinstance(c, str) for c in choices)):
            guess = closest(value, choices)
            if guess:
                raise UserError(f"argument {argparse._get_action_name(action)}: invalid choice: {value!r} — "
                                f"did you mean {guess}? (--help lists the choices)")
        super()._check_value(action, value)

    def refuse_a_flag_before_its_command(self, at):
        """self.words[at], a flag this parser lacks, and a command after it that has it (python -m bench.speed
        --device cpu train): the fix is the flag, with its value, moved after the command."""
        token = self.words[at]
        flag = token.split("=")[0]
        commands = self.commands()
        # the first command after it that has it (not its value: --prompt loss attention is attention's --prompt)
        action = next((commands[word]._option_string_actions[flag] for word in self.words[at + 1:]
                       if word in commands and flag in commands[word]._option_string_actions), None)
        if action is None:  # (--data_dir X check 3: argparse took X for the command, and check has no --data_dir)
            self.refuse_another_commands_flag(flag, next((w for w in self.words[at + 1:] if w in commands), None))
        if action is None or flag in self._option_string_actions:
            return
        moved = self.words[at:at + 1 + ("=" not in token and action.nargs is None)]  # with its value, if it takes one
        fixed = self.words[:at] + self.words[at + len(moved):] + moved
        raise UserError(f"{flag} belongs to the command: give it after the command — e.g. {self.prog} "
                        f"{shlex.join(fixed)}")

    def refuse_another_commands_flag(self, flag, command):
        """flag, which command lacks and another command has (python -m exercises check 3 --data_dir X): the
        command it belongs to, where a typo's guess would have offered a flag of command's own."""
        owners = [name for name, parser in self.commands().items() if flag in parser._option_string_actions]
        if command in self.commands() and owners and command not in owners and flag not in self._option_string_actions:
            named = f"{', '.join(owners[:-1])} or {owners[-1]}" if len(owners) > 1 else owners[0]
            raise UserError(f"{flag} is a flag of {named}, not of {command} — {self.prog} {owners[0]} --help "
                            f"lists {owners[0]}'s flags")

    def refuse_a_flag_of_another_command(self):
        """A flag in the command line that its command lacks and another command has: refused, by name."""
        command = next((word for word in self.words if word in self.commands()), None)
        for word in self.words:
            if word.startswith("--"):
                self.refuse_another_commands_flag(word.split("=")[0], command)

    def commands(self):
        """The commands (subparsers) by name, or {} for a parser without them."""
        return next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})

    def _print_message(self, message, file=None):
        """--help's text, written without argparse's `except OSError: pass`: a full disk is said (run_cli)."""
        if message and (file := file or sys.stderr) is not None:  # (None: a stream closed before run_cli)
            file.write(message)

    def error(self, message):
        if flag := re.fullmatch(r"argument (--\w+): ignored explicit argument .*", message):  # --resume=true
            raise UserError(f"{message} — {flag[1]} takes no value: write {flag[1]} alone")
        if flag := re.fullmatch(r"argument (--\w+).*: expected one argument", message):  # --prompt -ROMEO
            choices = getattr(self._option_string_actions.get(flag[1]), "choices", None)
            if choices:  # (--preset --out_dir x: the value was left out, not a dash-led one)
                raise UserError(f"{message} — give {flag[1]} one of: {', '.join(choices)}")
            raise UserError(f"{message} — give {flag[1]} a value; one starting with a dash goes after =, "
                            f"as in {flag[1]}=-TEXT")
        raise UserError(f"{message} — run with --help for the valid flags and values")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help adds each flag's default, except where its help already says it, where there is
    none, or where the flag takes no value (--quick: off unless given)."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0 or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


OLDEST_TORCH = (2, 4)  # the first with nn.RMSNorm (model.py's qk-norm); requirements.txt asks for it too


def refuse_an_old_torch():
    """A PyTorch older than OLDEST_TORCH fails with an AttributeError, 2.3 deep in model.py, 2.1 at an import
    (machinery/bookkeeping.py names none of what it lacks, so as to get this far): say so first."""
    torch = sys.modules.get("torch")  # (prepare.py never imports it)
    found = re.match(r"(\d+)\.(\d+)", torch.__version__) if torch is not None else None
    if found and tuple(map(int, found.groups())) < OLDEST_TORCH:
        raise UserError(f"this needs PyTorch {'.'.join(map(str, OLDEST_TORCH))} or newer, and this Python has "
                        f"{torch.__version__} — upgrade it (pip install -U torch; without a GPU, as the README's "
                        f"Set-up says)")


def read_only(stream):
    """Whether an output's file is open for reading only, so that every write fails: `2</dev/null`, or `2>&-`
    through a pyenv shim, a shell script, whose own file then takes the closed descriptor."""
    try:
        import fcntl  # (not on Windows)
        return fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
    except (ImportError, AttributeError, OSError, ValueError):  # no file under it (pytest's capture, say)
        return False


def run_cli(main, argv=None):
    """Run main(argv); a UserError becomes 'error: ...' on stderr and exit code 2, not a traceback."""
    for name in ("stdout", "stderr"):  # closed (python train.py >&-): None in Python, so its writes go nowhere
        if getattr(sys, name) is None or read_only(getattr(sys, name)):
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # (every character: none can fail)
    try:
        refuse_an_old_torch()
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's, after --help (its errors are UserErrors here): flushed below too
            code = e.code
        sys.stdout.flush()  # a pipe holds the output back until here; a reader gone by now is caught below
        return code
    except UserError as e:
        # under torchrun every process meets the same mistake: the others wait, so that process 0
        # says it and torchrun then stops the rest; a mistake of one process alone is still said, 3 s later
        if os.environ.get("RANK", "0") != "0":
            time.sleep(3)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # under torchrun with several processes a Ctrl-C stops them all at once (StopOnCtrlC says why):
        # process 0 says so, once
        several = "RANK" in os.environ and os.environ.get("WORLD_SIZE", "1") != "1"
        if not several:  # (a second Ctrl-C in training: what it left, from StopOnCtrlC)
            print("interrupted" + (f" {e}" if str(e) else ""), file=sys.stderr)
        elif os.environ["RANK"] == "0":
            print("interrupted — every process stopped at once: --resume goes on from the latest.pt of the last "
                  "evaluation, if one was saved (docs/multi-gpu.md)", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:  # CUDA's OutOfMemoryError is a RuntimeError; the CPU's, one by its text
        if str(e).startswith("Symlink loop from"):  # Path.resolve() on a link to itself (Python 3.12 and older)
            return loop_of_links(str(e).removeprefix("Symlink loop from "))
        torch = sys.modules.get("torch")  # (prepare.py never imports it: this file leaves torch to those who need it)
        cuda_oom = torch is not None and isinstance(e, torch.cuda.OutOfMemoryError)
        if not (isinstance(e, MemoryError) or cuda_oom or "can't allocate memory" in str(e)):
            raise
        print(f"error: out of memory{asked_for(e)} — use smaller sizes: train.py's --batch_size, --block_size, "
              f"--n_layer or --n_embd, sample.py's --num_samples", file=sys.stderr)
        return 2
    except UnicodeEncodeError as e:  # printing a character the output's encoding lacks (Windows: cp1252)
        if codecs.lookup(sys.stdout.encoding).name == "utf-8":  # it has them all: something else went wrong
            raise
        print(f"error: the output's encoding, {sys.stdout.encoding}, has no {ascii(e.object[e.start])} — set "
              f"PYTHONIOENCODING=utf-8 and run again", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (python sample.py | head): stop quietly
        stdout_to_devnull()
        return 141  # what a shell reports for a process ended by SIGPIPE
    except PermissionError as e:  # a file, or a folder on its path, this user may not read or enter
        print(f"error: permission denied: {e.filename or e} — check its permissions and its folders', or choose "
              f"another path", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link to itself, opened (Python 3.13's resolve() no longer refuses it)
            return loop_of_links(repr(e.filename) if e.filename else "a path")
        if e.errno == errno.ENAMETOOLONG:  # a file or folder name past the file system's limit (255 bytes, often)
            print(f"error: a name in {e.filename2 or e.filename or e} is longer than the file system allows — use a "
                  f"shorter one", file=sys.stderr)
            return 2
        # python train.py > train.log, on a disk that fills up (a save says so itself)
        if e.errno != errno.ENOSPC or e.filename is not None:  # (a print's error names no file)
            raise
        stdout_to_devnull()
        print("error: the disk that the output goes to is full — free some space there and run again (a training "
              "run that saved a checkpoint goes on with --resume)", file=sys.stderr)
        return 2


def loop_of_links(name):
    """One line for a path through a symbolic link that leads back to itself, which no open gets past: exit 2."""
    print(f"error: {name} goes through a symbolic link that leads back to itself — point the link at a real file or "
          f"folder, or give another path", file=sys.stderr)
    return 2


def stdout_to_devnull():
    """After stdout failed (a closed pipe, a full disk): so that Python's flush at exit cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # (io.UnsupportedOperation: an output that is no file)
        pass


def asked_for(error):
    """' (it asked for 13.6 GB)', from an out-of-memory error's text (the CPU's bytes, CUDA's GiB), or ''."""
    if found := re.search(r"allocate (\d+) bytes", str(error)):
        return f" (it asked for {int(found[1]) / 1e9:.1f} GB)"
    if found := re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]iB)", str(error)):
        return f" (it asked for {found[1]})"
    return ""


def closest(word, options, cutoff=0.6):
    """The option one typo or so from word, or None: the fix a "did you mean" hint offers."""
    guess = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return guess[0] if guess else None


def flag_for_a_path(word, flags):
    """A file or folder given without its flag (python prepare.py notes.txt) -> "FLAG PATH", the flag
    it most likely needed, of those this script has, or None: a prepared data folder's (data: the one
    inside it), a run folder's (one that holds a run, or an empty one), a checkpoint's or a text's."""
    from machinery.checkpoint import holds_a_run  # (here, not above: both modules import this one)
    from machinery.data import is_prepared
    try:
        path = Path(word).expanduser()  # (~nobody, no such user: a RuntimeError)
        if path.is_dir():
            inside = list(path.iterdir())
            prepared = [path] if is_prepared(path) else [p for p in inside if is_prepared(p)]
            if len(prepared) == 1 and "--data_dir" in flags:
                return f"--data_dir {shlex.quote(str(prepared[0]))}"
            wanted = ["--out_dir"] if not inside or holds_a_run(path, ("best.pt", "latest.pt", "log.csv")) else []
        elif path.is_file():
            wanted = ["--checkpoint"] if path.suffix == ".pt" else ["--input", "--prompt_file"]
        else:
            return None
    except (OSError, RuntimeError):  # a folder we may not look into, a name too long
        return None
    return next((f"{flag} {shlex.quote(word)}" for flag in wanted if flag in flags), None)


def closest_flag(typed, flags):
    """The flag(s) a mistyped one most likely meant, or None: those it begins (--temp: --temperature)
    or names a word of (--tokens: --max_new_tokens; --size: --batch_size or --block_size), else the
    flag a typo or so from it (--lrr: --lr). Whole-string likeness alone took --temp for --help."""
    typed = typed.strip()  # ("--lr ", quoted with its space, meant --lr)
    name = typed.removeprefix("--")
    if not name.strip("-"):  # (a bare --, where --lr was the likeliest flag: it is none of them)
        return None
    if typed.startswith("--") and len(name) >= 3:  # (--n begins a dozen flags; a stray word is no flag)
        for fits in (lambda flag: flag.startswith(name), lambda flag: name in flag.split("_")):
            found = [flag for flag in flags if fits(flag.removeprefix("--"))]
            if not found:
                continue
            if len(found) == 1:
                return found[0]
            if len(found) <= 3:  # name them all: --eval_interval or --eval_iters
                return f"{', '.join(found[:-1])} or {found[-1]}"
            return closest(typed, found, cutoff=0)  # too many to name: the likeliest of them
    short = typed.lstrip("-")
    if not typed.startswith("-") or len(short) > 3:  # likeness to the whole flag, whose dashes a stray word
        return closest(typed, flags)                   # lacks (train.py bigram: not --bias)
    # a short name, without its dashes, which made half of it (sample.py --l was offered --help); a two-letter
    # flag one letter off (--le: --lr) is as alike as two letters can be
    names = {flag.lstrip("-"): flag for flag in flags}
    return names.get(closest(short, names) or closest(short, [n for n in names if len(n) == len(short)], 0.5))


def near_miss(path, fits):
    """Another path beside path whose name is one typo or so from its, and for which fits(that
    path) holds, or None (input.tx -> input.txt)."""
    path = Path(path)
    try:
        beside = [p.name for p in path.parent.iterdir() if p.name != path.name and fits(p)]
    except OSError:  # no such parent folder, or one we may not read
        return None
    # names that differ only in their digits (run2 and run3, ckpt_1000.pt) are other runs, not typos
    beside = [name for name in beside if re.sub(r"\d", "", name) != re.sub(r"\d", "", path.name)]
    # 0.75: shakespear -> shakespeare (0.95) and dta -> data (0.86), but not poems -> notes (0.6)
    guess = closest(path.name, beside, cutoff=0.75)
    return path.parent / guess if guess else None


def repo_holds(path, fits):
    """REPO / path, where a script run from another folder (python ../char-gpt/sample.py) finds nothing at a relative
    path but the repo's folder holds what fits: the scripts read and write data/ and out/ where they are run, not
    where they are. Else None."""
    path = Path(path)
    if path.is_absolute() or not path.parts or Path(path.parts[0]).exists():
        return None  # (its first part here, a data/ or an out/: the user works in this folder, and its hints fit)
    try:
        elsewhere = Path.cwd().resolve() != REPO
    except OSError:  # a folder deleted under the shell: nothing to compare
        return None
    return REPO / path if elsewhere and fits(REPO / path) else None


def folders_inside(folder, fits):
    """The folders in folder that fits accepts (out/bigram, data/shakespeare), quoted for a command line: up to 3,
    then '...'; "" for none, or for a folder that cannot be listed."""
    try:
        found = [shlex.quote(str(path)) for path in sorted(Path(folder).iterdir()) if fits(path)]
    except OSError:  # no such folder, or not one
        return ""
    return ", ".join(found[:3]) + ", ..." * (len(found) > 3)


def unless_a_typo(path, flag, fits, hint):
    """hint, led by "did you mean FLAG X? If not," where X, beside path, fits and is one typo from it; or by
    "did you mean the repo's X?" where the repo's folder holds what fits and the script was run in another."""
    if near := near_miss(path, fits):
        return f"did you mean {flag} {shlex.quote(str(near))}? If not, {hint}"
    if there := repo_holds(path, fits):
        return (f"did you mean the repo's {there}? The scripts read and write in the folder they are run from: "
                f"`cd {shlex.quote(str(REPO))}` and run it there. If not, {hint}")
    return hint


def check_suffix(path, suffix, name, flag):
    """A file the user names for a script to write must end in suffix, so that a slip (--save
    out/run/best.pt) cannot overwrite another kind of file. The fix offered: path with the suffix, or,
    for a folder, name inside it."""
    path = Path(path)
    if path.suffix.lower() == suffix:
        return
    if path.name.lower() == suffix:  # (".png" is a hidden file's whole name to Path, with no suffix)
        raise UserError(f"{flag} {path} has no name before its {suffix} — e.g. {flag} "
                        f"{shlex.quote(str(path.with_name(name)))}")
    fix = path / name if path.is_dir() or path.name in ("", "..") else path.with_suffix(suffix)
    raise UserError(f"{flag} {path} must end in {suffix} — e.g. {flag} {shlex.quote(str(fix))}")


def parse_bool(text):
    value = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


MAX_COUNT = 10 ** 9  # the most steps, batches or sizes a flag may ask for: far past any run, short of an overflow


def check_count(flag, value, fix="fix the flag", least=1):
    """A count flag (steps, batches, sizes, samples) from `least` to MAX_COUNT, else one line. Past MAX_COUNT it
    would be an overflow deep in torch or tqdm (from 2 ** 63), not a run."""
    if value < least:
        raise UserError(f"{flag} {value} must be at least {least} — {fix}")
    if value > MAX_COUNT:
        raise UserError(f"{flag} is {value:,}, above {MAX_COUNT:,}, the most a count may be — give a smaller number")


def refuse_an_unreachable_target(target):
    """bench.speed's and bench.suite's --target: a val loss to train down to (inf: the first evaluation, as
    --smoke's)."""
    if target is not None and not target > 0:  # (nan too)
        raise UserError(f"--target {target} is a val loss no run reaches: a loss is above 0 — e.g. --target 1.47")


SEEDS = range(-2 ** 63, 2 ** 63)  # what torch.manual_seed takes (64 bits), with room for seed + rank


def parse_seed(text):
    """--seed's type: an integer in SEEDS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value not in SEEDS:
        raise argparse.ArgumentTypeError(f"{value} does not fit in 64 bits, as PyTorch's generators need")
    return value


def flag_type(hint, where):
    """Annotated[Optional[bool], "help"] -> (bool, "help"). where: the field, to name in the error for a field
    a fork declared without its help (a plain `mlp_ratio: int = 4`), which would fail in an AttributeError."""
    if typing.get_origin(hint) is not typing.Annotated:
        name = where.rsplit(".", 1)[-1]
        kind = hint.__name__ if isinstance(hint, type) else repr(hint).replace("typing.", "")  # (list[int])
        raise UserError(f"{where} has no help: declare it as {name}: Annotated[{kind}, \"what it does\"] = its "
                        f"default, as the other fields are (it becomes a --flag with that help)")
    kind, help = hint.__origin__, hint.__metadata__[0]
    if typing.get_origin(kind) is typing.Union:  # Optional[X] is Union[X, None]
        kind = typing.get_args(kind)[0]
    return kind, help


def add_flags(parser, config_class, skip=(), preset=None, preset_values=None, choices=None):
    """Add a --name flag for every field of a config dataclass, typed and with its help,
    which shows the value in effect: the preset's where it sets one, else the dataclass's,
    and, for a field in choices ({name: its valid values}), the values it takes."""
    hints = typing.get_type_hints(config_class, include_extras=True)
    for f in fields(config_class):
        if f.name in skip:
            continue
        kind, help = flag_type(hints[f.name], f"{config_class.__module__}.{config_class.__name__}.{f.name}")
        if f.name in (choices or {}):
            help += f"; one of: {', '.join(choices[f.name])}"
        if kind is bool:  # "--bias" alone means true; "--bias false" also works
            typed = dict(type=parse_bool, nargs="?", const=True, metavar="BOOL")
        else:
            typed = dict(type=kind, metavar=kind.__name__.upper())
        values = preset_values or {}
        if f.name in values:
            help += f" (default: {values[f.name]}, from preset {preset})"
        elif "(default" not in help:  # (where the help says it already: --compile's depends on the device)
            help += f" (default: {f.default})"
        # SUPPRESS: a flag not given stays out of the result, so it cannot mask the preset's value
        parser.add_argument(f"--{f.name}", help=help, default=argparse.SUPPRESS, **typed)


def pick_device(name):
    """'auto' -> the best device present; anything else is checked to exist."""
    import torch  # (here, not at the top: prepare.py starts a second sooner, and a Ctrl-C in that second is clean)
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name!r} is unknown — use auto, cpu, cuda or mps")
    if kind == "cuda" and not cuda:
        raise UserError("--device cuda, but PyTorch sees no CUDA GPU here — use --device cpu "
                        "(or auto), or install a CUDA build of PyTorch")
    if kind == "mps" and not mps:
        raise UserError("--device mps, but this machine has no Apple GPU — use --device cpu (or auto)")
    try:
        device = torch.device(name)
    except RuntimeError:  # what follows the colon is not a number (cpu:abc, cuda:)
        raise UserError(f"--device {name!r} is not a device — use auto, cpu, cuda, cuda:N or mps") from None
    if kind == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}, but this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered "
                        f"from 0 — use --device cuda")
    return device


def dtype_name(dtype):
    """torch.bfloat16 -> 'bfloat16', the name --dtype takes."""
    return str(dtype).removeprefix("torch.")


def refuse_stray_bytes(prompt):
    """A --prompt with bytes that are not UTF-8, which Python holds as stand-ins (U+DC80 to U+DCFF): one line that
    says so, rather than naming the stand-ins as characters the model lacks."""
    if any("\udc80" <= c <= "\udcff" for c in prompt):
        raise UserError("--prompt holds bytes that are not UTF-8 (from a terminal set to another encoding?) — give "
                        "it as UTF-8 text")


def refuse_to_write_over(path, mark, writer, flag):
    """Before a script writes a file at path: one of the user's there already, which does not hold mark (bytes that
    the files of writer, the script or matplotlib, have near their start) is refused, as are a folder at path, a
    file where a folder on the way should be, and a folder that cannot be written in: found out now, not after the
    work whose result it is."""
    path = Path(path)
    if blocked := next((p for p in path.parents if p.is_file()), None):  # (mkdir would say "File exists")
        raise UserError(f"cannot write {path}: {blocked} is a file, not a folder — choose another {flag}")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder — choose another {flag}")
    folder = next(p for p in path.parents if p.is_dir())  # the nearest one there (the rest are made as it is written)
    try:  # a file made and removed there
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UserError(f"cannot write {path}: {folder} takes no new file ({e.strerror}) — choose another {flag}") \
            from None
    try:
        with open(path, "rb") as f:
            ours = mark in f.read(300)
    except FileNotFoundError:
        ours = True  # nothing there to lose
    except OSError:  # a folder of that name, say
        ours = False
    if not ours:
        raise UserError(f"{path} was not written by {writer}, and this would replace it — choose another {flag}, or "
                        f"move it away")


def refuse_a_run_folder_gone(folder):
    """A run's folder that is no longer there while it trains (moved, renamed or deleted): said as such, where the
    write's "No such file or directory" read as a full disk's fix. Its checkpoints, if any yet, went with it."""
    try:
        os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(f"{folder} is gone: moved or deleted while the run trained — if it was moved and holds a "
                        f"latest.pt, go on from it there: python train.py --resume --out_dir NEW_PLACE; if not, "
                        f"start the run again") from None
    except OSError:  # there, but not to be looked into (a parent's permission): the write's own error says so
        return


def write_atomically(path, write):
    """Call write(file) on a temp file beside `path`, then rename it into place.

    A crash half-way leaves the old file (or nothing) behind, never half a file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private; give it normal permissions
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself survive a power cut
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def current_umask():
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask
