"""Link layers that carry APDUs: HDLC (IEC 62056-46), the TCP/UDP wrapper (IEC 62056-47),
wired M-Bus (EN 13757-2) and the optical sign-on of IEC 62056-21 mode E."""
