"""Sans-IO DLMS/COSEM core: bytes in, events out; no sockets, threads, clocks or files."""
