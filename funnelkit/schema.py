"""Column names and event types of the canonical event table, in one place.

Every module refers to columns through :data:`COLUMNS` so that a rename is one
edit. ``funnelkit.data`` maps each supported input format onto this schema.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventColumns:
    """Names of the canonical event table's columns.

    Required: ``user_id``, ``event_time`` (timezone-aware UTC), ``event_type``.
    ``session_id`` is derived from a 30-minute inactivity gap when absent.
    Optional: ``item_id``, ``category``, ``price``. Any other column is a
    segment column (device, channel, country, ...).
    """

    user_id: str = "user_id"
    session_id: str = "session_id"
    event_time: str = "event_time"
    event_type: str = "event_type"
    item_id: str = "item_id"
    category: str = "category"
    price: str = "price"

    @property
    def required(self) -> tuple[str, ...]:
        return (self.user_id, self.event_time, self.event_type)

    @property
    def optional(self) -> tuple[str, ...]:
        return (self.session_id, self.item_id, self.category, self.price)

    @property
    def canonical(self) -> tuple[str, ...]:
        return self.required[:1] + (self.session_id,) + self.required[1:] + self.optional[1:]


COLUMNS = EventColumns()


@dataclass(frozen=True)
class EventTypes:
    """Canonical event type names of the e-commerce funnel."""

    view: str = "view"
    cart: str = "cart"
    checkout: str = "checkout"
    purchase: str = "purchase"
    refund: str = "refund"
    """A purchase with a negative price (``funnelkit.data`` renames it): not a conversion, not revenue."""

    @property
    def funnel(self) -> tuple[str, ...]:
        return (self.view, self.cart, self.checkout, self.purchase)


EVENTS = EventTypes()


@dataclass(frozen=True)
class Segments:
    """Segment columns written by the built-in simulator."""

    device: str = "device"
    channel: str = "channel"
    country: str = "country"
    customer_type: str = "customer_type"

    @property
    def all(self) -> tuple[str, ...]:
        return (self.device, self.channel, self.country, self.customer_type)


SEGMENTS = Segments()

# Event times are compared as whole microseconds since 1970 (``epoch_us``): the engines' time unit.
US_PER_MILLISECOND = 1_000
US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
"""Prefixes of the DuckDB type names that hold numbers (``DECIMAL(18,3)`` starts with ``DECIMAL``)."""
