"""Outgoing transports beside SMTP (``services.sender.pool``); ``services.sender.registry``
chooses one by the outgoing connection's ``protocol``."""
