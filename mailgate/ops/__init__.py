"""Running mailgate: the supervisor, worker processes, systemd, logs and doctor."""
