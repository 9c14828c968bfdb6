"""A stand-in for the SpRecord MiniPBX cloud event API, for tests and demos."""

from .server import DEFAULT_DEVICE_ID, EmulatorStats, SpRecordEmulator

__all__ = ["DEFAULT_DEVICE_ID", "EmulatorStats", "SpRecordEmulator"]
