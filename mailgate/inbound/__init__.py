"""Edges that receive mail: SMTP/LMTP, IMAP, files. All of them accept through ``intake``."""
