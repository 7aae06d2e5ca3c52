"""Errors that genzoo reports to users as one clear line (the CLI prints them without a traceback)."""


class GenzooError(Exception):
    """Base class: a problem with the user's input or environment, not a bug in genzoo."""


class DataError(GenzooError):
    """A dataset is missing, corrupt, or cannot be downloaded."""


class ConfigError(GenzooError):
    """An unknown model, option or value."""


class RunDirError(GenzooError):
    """A run directory is missing, incomplete, or not writable."""


class TrainingDiverged(GenzooError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class Stopped(GenzooError):
    """Training was stopped (Ctrl-C) and saved; the same command continues it (exit status 130)."""
