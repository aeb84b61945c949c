"""The pure core: values in, values out; no database, socket, queue or template engine."""
