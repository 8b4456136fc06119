"""Errors the application reports to people as one clear line (the CLI exits non-zero)."""

from __future__ import annotations


class MasError(Exception):
    """Base class: the message names the problem and, where there is one, the fix."""


class InputError(MasError):
    """The run's input failed validation before any work started."""


class ToolConfigError(MasError):
    """The operator's tool configuration (MCP servers) is unreadable or invalid."""


class UnknownPatternError(MasError):
    def __init__(self, pattern: str, known: list[str]) -> None:
        super().__init__(f"unknown pattern '{pattern}'; choose one of: {', '.join(known)}")


class UnknownThreadError(MasError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no thread '{thread_id}' in this database (see `mas threads`)")


class ThreadFinishedError(MasError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread '{thread_id}' already finished; start a new run with `mas run`, "
            f"or inspect it with `mas show {thread_id}`"
        )


class ThreadExistsError(MasError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread '{thread_id}' already exists; continue it with `mas resume {thread_id}` "
            "or pick a new thread id"
        )


class ServedThreadError(MasError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread '{thread_id}' is run by the Agent Protocol server (mas serve); continue "
            f"it there, e.g. `mas --server URL resume {thread_id}`, so it has one writer"
        )


class ResumeAnswerError(MasError):
    """A resume answer was missing, unexpected or of the wrong shape."""


class ModelSpecError(MasError):
    """A model spec string could not be understood."""


class ModelUnavailableError(MasError):
    """The model provider could not be reached or lacks the model."""


class RunFailedError(MasError):
    """A run stopped on an error; its checkpoints are kept so it can be resumed."""


class SettingsError(MasError, ValueError):
    """An environment variable holds a value mas cannot use; the message names it and the
    form it takes."""
