"""Drivers: the only code that runs system tools."""
