"""dlms-edge: read DLMS/COSEM smart meters and publish their values on MQTT."""

__version__ = "0.1.0"
