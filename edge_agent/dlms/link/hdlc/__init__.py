"""HDLC link layer of IEC 62056-46.

Frames, addresses and parameters live in :mod:`edge_agent.dlms.link.hdlc.frame`; the sans-IO
connection (both roles) in :mod:`edge_agent.dlms.link.hdlc.connection`. Nothing is
re-exported here, so a reader of frames (``dlms-edge decode``) does not load the connection.
"""
