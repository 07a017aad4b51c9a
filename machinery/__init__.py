"""The machinery the top-level files share, out of the lesson's way.

    cli.py         the command line: UserError and its one-line message, flags made from the
                   config dataclasses, the device, crash-safe file writes
    settings.py    where a run's values come from (dataclass < preset or checkpoint < flags),
                   and the checks that refuse impossible ones (train.py's and sample.py's)
    data.py        getting a text (download, encoding checks) and reading prepared data back
    checkpoint.py  what a checkpoint holds; saving, loading and restoring one; the log's reader
    bookkeeping.py a run's bookkeeping: its state, start-up lines, log.csv, Ctrl-C, nan steps
    ddp.py         several processes under torchrun: joining, sharing the batch, summing
    optim.py       AdamW's parameter groups, Muon, and the step a nan skips

Nothing here imports a script (prepare.py, train.py, sample.py); it reads model.py and config.py, the
model and the settings, which import nothing of the repo's.
"""
