"""``mailgate doctor``'s lines for chat channels and webhooks (issue 24).

Always: the variables a channel names are set, and its URL is https (http only to this
machine's loopback). With ``--network`` also: its host answers, checked by a TCP
connection and, for https, a TLS handshake that verifies the certificate. No HTTP
request is made, so no message is ever sent: a HEAD or OPTIONS would carry the URL's
path, which is the secret, to a receiver that may act on any method (a Teams workflow
runs on whatever reaches it) or log it, and Slack answers either with an error whatever
the URL is worth, so the status would prove nothing the handshake does not.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.request
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from mailgate.core.errors import PermanentFailure
from mailgate.core.settings import Settings
from mailgate.ops.doctor import NETWORK_TIMEOUT, Check
from mailgate.outbound.chat_delivery import SIGNED_WEBHOOK, Target, targets
from mailgate.outbound.chat_transport import endpoint, from_env, is_loopback, url_from_env


def check_channels(
    settings: Settings,
    *,
    network: bool = False,
    environ: Mapping[str, str] | None = None,
    timeout: float = NETWORK_TIMEOUT,
) -> Iterator[Check]:
    """One line per chat channel and webhook; none when there are none."""
    env = os.environ if environ is None else environ
    for target in sorted(targets(settings).values(), key=lambda t: t.name):
        yield _check(target, env, network=network, timeout=timeout)


def _check(target: Target, env: Mapping[str, str], *, network: bool, timeout: float) -> Check:
    signed = target.kind == SIGNED_WEBHOOK
    name = f"{'webhook' if signed else 'chat'} {target.name}"
    try:
        url = url_from_env(target.url_env, env)
        if signed:
            from_env(target.secret_env, env, what="signing secret")
    except PermanentFailure as exc:
        return Check(name, False, str(exc))
    said = f"{target.kind}, ${target.url_env} is {endpoint(url)}"
    if signed:
        said += f", ${target.secret_env} set"
    if not network:
        return Check(name, True, said)
    try:
        reached = reach(url, timeout=timeout)
    except (OSError, ValueError) as exc:
        return Check(name, False, f"{said}: cannot connect: {_reason(exc)}")
    return Check(name, True, f"{said}, {reached}")


def reach(url: str, *, timeout: float) -> str:
    """Connect to the URL's host (or the proxy the environment names for it) and, for
    https to the host itself, shake hands over TLS; what was proven."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = _proxy_for(parts.scheme, host)
    if proxy is not None:
        with socket.create_connection(proxy, timeout=timeout):
            pass
        return f"proxy {proxy[0]}:{proxy[1]} reachable (the service behind it not checked)"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if parts.scheme != "https":
            return "reachable"
        context = ssl.create_default_context()
        with context.wrap_socket(sock, server_hostname=host):
            pass
    return "reachable, certificate valid"


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The proxy urllib would send this request through (https_proxy, no_proxy)."""
    if is_loopback(host):
        return None  # the sender never uses a proxy for loopback
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or 80


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not valid: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or type(exc).__name__
