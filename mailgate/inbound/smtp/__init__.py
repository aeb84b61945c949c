"""The SMTP/LMTP receiver: aiosmtpd protocol, handler and server."""
