"""Celeriac's SDK: what producers and task modules import."""

from sdk import states
from sdk.app import App
from sdk.errors import CeleriacError, Reject, Retry, TaskError
from sdk.result import AsyncResult
from sdk.task import Task

__all__ = ["App", "AsyncResult", "CeleriacError", "Reject", "Retry", "Task", "TaskError", "states"]
