"""Data that meters push (Green Book 9.5 DataNotification, EN 13757, DSMR P1): framing,
reassembly, deciphering and the notification body, sans-IO."""
