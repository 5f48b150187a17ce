"""Reading ``X-Forwarded-*`` headers as far as ``trust_proxy`` says to believe them."""

from __future__ import annotations


def trusted_hop(value: str | None, hops: int) -> str | None:
    """The entry ``hops`` from the right of a comma list that proxies appended to.

    Only the entries our own proxies wrote are believed (express's ``trust proxy``
    count); anything further left is whatever the client sent. ``None`` when there is
    nothing to believe.
    """
    if not value or hops <= 0:
        return None
    items = [p.strip() for p in value.split(",") if p.strip()]
    return items[-min(hops, len(items))] if items else None
