"""Edges that send mail: render a notice, compose the message, hand it to a transport."""
