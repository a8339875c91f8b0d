"""9P2000.L: the wire format (messages.py, with the fd-donation extension) and the sentry's client."""
