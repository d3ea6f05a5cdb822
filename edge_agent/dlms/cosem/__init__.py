"""The COSEM object model (Blue Book, DLMS UA 1000-1): OBIS codes, units and scalers,
the interface-class tables and the Security setup class."""
