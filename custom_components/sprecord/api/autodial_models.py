"""What the auto-dial API speaks of: its errors, a task's state, status and results."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .exceptions import SpRecordError


class AutoDialError(SpRecordError):
    """Base of every auto-dial error; also any warning or error not known here.

    `code` is the vendor's `result_code` when the PBX gave one; the message is
    the PBX's `result_txt` when it gave one. Both are made one bounded line
    of printable text (`vendor_text()`). `status` is the HTTP status of
    an answer that came with an error status.
    """

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None
    ) -> None:
        """Keep the vendor's code and the HTTP status beside the message."""
        super().__init__(message, status=status)
        self.code = code


class AutoDialUnreachable(AutoDialError):  # noqa: N818 (the API's names)
    """The address does not answer as the auto-dial API.

    No connection (refused, reset, unknown host), no answer in time, an HTTP
    error status, or an answer that is not a JSON object in the vendor's shape.
    """


class AutoDialNotFound(AutoDialError):  # noqa: N818 (the API's names)
    """The PBX has no task of that name, or no task of that id (`not_found`)."""


class AutoDialAlreadyRunning(AutoDialError):  # noqa: N818 (the API's names)
    """The task is already running (warning `already_running`)."""


class AutoDialWrongState(AutoDialError):  # noqa: N818 (the API's names)
    """The task's state does not take the command.

    `code` tells which: `not_running`, `not_suspended` (resumed while not
    paused) or `already_suspended`.
    """


class TaskState(StrEnum):
    """The state of a task. A state the vendor adds later is kept as it is."""

    NONE = "none"
    """Never ran."""
    RUN = "run"
    FINISH = "finish"
    PAUSE = "pause"
    STOP = "stop"
    """Stopped before the end (`task_stop`)."""

    @classmethod
    def _missing_(cls, value: object) -> TaskState | None:
        """Keep an unknown state as a pseudo-member that holds its text."""
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Tell whether the state is one the vendor documents."""
        return self._name_ != "UNKNOWN"


class AutoDialCommand(StrEnum):
    """What `command()` can ask of a started task (the vendor's `cmd`)."""

    PAUSE = "task_pause"
    RESUME = "task_resume"
    STOP = "task_stop"


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """How far a task is: its state and the vendor's counts.

    `total` numbers in the task, `done` numbers finished, `success`
    successful attempts, `tried` numbers attempted, `attempts` all dial
    attempts.
    """

    state: TaskState
    total: int
    done: int
    success: int
    tried: int
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        """Return the status, JSON-serialisable."""
        return {
            "state": self.state.value,
            "total": self.total,
            "done": self.done,
            "success": self.success,
            "tried": self.tried,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class NumberResult:
    """How dialling one number of a task went.

    `result` is `ok`, `fail` or `dialing`, None when the number has not been
    tried yet; `result_code` says how it ended (`talk`, `busy`, `timeout` ...).
    """

    number: str
    result: str | None
    result_code: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the result, JSON-serialisable."""
        return {
            "number": self.number,
            "result": self.result,
            "result_code": self.result_code,
        }
