"""Errors raised by the checkpoint layer; each message names the problem and the fix."""


class CheckpointError(RuntimeError):
    """Base class for checkpoint-layer failures the CLI reports as one line."""


class DatabaseUnavailable(CheckpointError):
    """PostgreSQL could not be reached."""


class ThreadLocked(CheckpointError):
    """Another process is running this thread right now."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread {thread_id} is already running in another process; "
            "wait for it to finish (see `mas threads`)"
        )
        self.thread_id = thread_id


class LockLostError(CheckpointError):
    """The connection holding a thread's lock dropped: another process may take the thread
    over, so the run must stop writing."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"lost the lock on thread {thread_id}: its connection to PostgreSQL dropped, so "
            "another process could take the thread over; the run stopped before writing more"
        )
        self.thread_id = thread_id
