"""tillsync: keeps a Shopify store and a Sitoo point of sale in agreement, in real time."""

__version__ = "0.1.0"
