"""Byte transports: the one small contract every device driver is written against."""

from drivers.transport.base import Transport, TransportClosed, TransportError, TransportTimeout

__all__ = ["Transport", "TransportClosed", "TransportError", "TransportTimeout"]
