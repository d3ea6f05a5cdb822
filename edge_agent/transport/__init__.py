"""Byte transports (I/O only): TCP, serial (optical mode E, RS-485) and pty pairs for tests.

Import the module you need (``transport.tcp``, ``transport.serial``, ...): this package
re-exports nothing, so a TCP client never loads pyserial.
"""
