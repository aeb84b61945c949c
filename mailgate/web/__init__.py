"""The portal (customers and agents) and the JSON API, served by ``mailgate web``."""
