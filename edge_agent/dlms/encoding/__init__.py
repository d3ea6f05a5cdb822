"""Encodings the DLMS layers share: A-XDR data (IEC 61334-6, Blue Book 4.1.5), its
COSEM date-time types (Blue Book 4.1.6.1), BER for ACSE (ISO/IEC 8825-1) and the HDLC CRC."""
