"""Client library for the SpRecord MiniPBX: cloud events, local auto-dial.

asyncio and aiohttp only: nothing here imports Home Assistant, so the package
can be published on its own as it stands.
"""

from .auth import BEARER, CANDIDATES, AuthScheme, scheme_from_openapi
from .autodial import AutoDialClient
from .autodial_models import (
    AutoDialAlreadyRunning,
    AutoDialCommand,
    AutoDialError,
    AutoDialNotFound,
    AutoDialUnreachable,
    AutoDialWrongState,
    NumberResult,
    TaskState,
    TaskStatus,
)
from .client import SpRecordClient, normalize_base_url, verification_response
from .exceptions import (
    AuthenticationError,
    ProtocolError,
    SpRecordConnectionError,
    SpRecordError,
    SpRecordTimeoutError,
    TooManyConnectionsError,
)
from .models import (
    SUBSCRIBABLE_EVENT_TYPES,
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    EventType,
    IncomingCallEvent,
    IncomingSmsEvent,
    OutgoingCallEvent,
    RecordCallStatus,
    SpRecordEvent,
    StartTalkEvent,
    StartupEvent,
    SubscriptionSettings,
    UnknownEvent,
    VerificationEvent,
)
from .parse import parse_event
from .sse import SSEEvent, SSEParser
from .stream import EventStream

__all__ = [
    "BEARER",
    "CANDIDATES",
    "SUBSCRIBABLE_EVENT_TYPES",
    "AnswerElsewhereEvent",
    "AuthScheme",
    "AuthenticationError",
    "AutoDialAlreadyRunning",
    "AutoDialClient",
    "AutoDialCommand",
    "AutoDialError",
    "AutoDialNotFound",
    "AutoDialUnreachable",
    "AutoDialWrongState",
    "CallEndEvent",
    "CallEvent",
    "EventStream",
    "EventType",
    "IncomingCallEvent",
    "IncomingSmsEvent",
    "NumberResult",
    "OutgoingCallEvent",
    "ProtocolError",
    "RecordCallStatus",
    "SSEEvent",
    "SSEParser",
    "SpRecordClient",
    "SpRecordConnectionError",
    "SpRecordError",
    "SpRecordEvent",
    "SpRecordTimeoutError",
    "StartTalkEvent",
    "StartupEvent",
    "SubscriptionSettings",
    "TaskState",
    "TaskStatus",
    "TooManyConnectionsError",
    "UnknownEvent",
    "VerificationEvent",
    "normalize_base_url",
    "parse_event",
    "scheme_from_openapi",
    "verification_response",
]
