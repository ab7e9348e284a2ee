"""Outgoing transports besides SMTP (``services.sender.pool``), chosen by the outgoing
connection's ``protocol``."""
