"""A Shopify Admin API simulator: GraphQL over HTTP, cost bucket, signed webhooks, faults."""

from connectors.shopify.sim.app import ShopifySimulator
from connectors.shopify.sim.clock import Clock, ManualClock, SystemClock
from connectors.shopify.sim.faults import Faults

__all__ = ["Clock", "Faults", "ManualClock", "ShopifySimulator", "SystemClock"]
